"""The miner's questions, one SQL query per class of finding, over ``spans`` and the store's tables
(``sources.py``). Every query returns the same columns, one row per finding:

kind, key, title, count, first_ns, last_ns, score, span_ids, run_ids, details (JSON text)

An occurrence is one span or store row; a finding needs ``MIN_COUNT`` occurrences (a recurring
thing, not a one-off). ``score`` is the share of the window's runs a finding touched (capability gaps:
the failure rate of the tasks concerned).
"""

from __future__ import annotations

MIN_COUNT = 2
MIN_TASKS = 4
"""Tasks of a type needed before their success rate is judged."""
LOW_SUCCESS = 0.5
COST_FACTOR = 5.0
"""A step costs "far above the median of its kind" at this many times that median."""
MIN_COST_SAMPLES = 5
LOOP_CALLS = 3
"""Model calls with the same prompt hash in one run that make a loop (two are an ordinary retry)."""

MACROS = r"""
CREATE OR REPLACE MACRO first_line(m) AS split_part(regexp_replace(coalesce(m, ''), chr(27) || '\[[0-9;]*m', '', 'g'),
                                                   chr(10), 1);
CREATE OR REPLACE MACRO norm_msg(m) AS left(trim(regexp_replace(
    regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
    regexp_replace(first_line(m),
        '\b[\w.-]+(/[\w.-]+)+', '<path>', 'g'),
        '(~|\.{1,2})?/[^\s''"():,;<>]+', '<path>', 'g'),
        '/?(<path>/?)+', '<path>', 'g'),
        '(sha256:)?\b[0-9a-f]{7,}\b|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<id>', 'g'),
        '\b\d{6}-\d{6}-[0-9a-f]{4}\b', '<run>', 'g'),
        '0x[0-9a-fA-F]+', '<addr>', 'g'),
        '\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b', '<ip>', 'g'),
        '\d+(\.\d+)?', 'N', 'g'),
    '\s+', ' ', 'g')), 160);
CREATE OR REPLACE MACRO error_type(m) AS coalesce(
    regexp_extract_all(first_line(m), '\b([A-Z][A-Za-z0-9]*(?:Error|Exception|Timeout|Exit|Interrupt))\b', 1)[-1],
    'error');
CREATE OR REPLACE MACRO step_kind(step, name) AS CASE
    WHEN step IS NULL THEN lower(regexp_replace(split_part(coalesce(name, '?'), ' ', 1), '^state$',
                                                 coalesce(split_part(name, ' ', 2), 'state')))
    WHEN step LIKE '%/rework-%' THEN 'rework'
    ELSE regexp_replace(split_part(step, '/', 1), '\.\d+$', '') END;
CREATE OR REPLACE MACRO task_of(step) AS nullif(split_part(step, '/', 2), '');
CREATE OR REPLACE MACRO wait_cause(r) AS CASE
    WHEN r IS NULL THEN 'unknown'
    WHEN regexp_matches(r, 'conflict') THEN 'merge_conflict'
    WHEN regexp_matches(r, 'fix attempt|fix round') THEN 'fix_loop_exhausted'
    WHEN regexp_matches(r, 'review') THEN 'review_rejected'
    WHEN regexp_matches(r, 'covered|coverage') THEN 'coverage_below'
    WHEN regexp_matches(r, '(?i)compliance') THEN 'compliance_block'
    WHEN regexp_matches(r, 'tests? (fail|were)|suite fails') THEN 'tests_fail'
    ELSE 'other: ' || norm_msg(r) END;
"""

_AGGREGATE = """
    count(*) AS count, min(start_ns) AS first_ns, max(start_ns) AS last_ns,
    least(1.0, count(DISTINCT run_id) / (SELECT n FROM run_total)) AS score,
    (list(span_id ORDER BY start_ns DESC) FILTER (WHERE span_id IS NOT NULL))[1:50] AS span_ids,
    (list_distinct(list(run_id ORDER BY start_ns DESC)))[1:50] AS run_ids
"""


def _grouped(kind: str, occurrences: str, dims: list[str], title: str, having: str = "") -> str:
    """One finding per distinct ``dims`` of ``occurrences`` (columns span_id, run_id, start_ns, dims)."""
    names = ", ".join(dims)
    details = "to_json({" + ", ".join(f"'{d}': {d}" for d in dims) + "})::VARCHAR"
    return f"""
    SELECT '{kind}' AS kind, concat_ws('|', {names}) AS key, {title} AS title, {_AGGREGATE},
           {details} AS details
    FROM ({occurrences}) AS occurrence
    GROUP BY {names}
    HAVING count(*) >= {MIN_COUNT} {having}
    """


def _union(*parts: str) -> str:
    return "\nUNION ALL\n".join(parts)


# -- failure patterns: recurring errors by role, step kind, error type and normalised message -------

FAILURES = _grouped("failure", """
    WITH err AS (SELECT * FROM spans WHERE status = 'error'),
    leaf AS (  -- a state or run span that only repeats the error of a span under it is not counted again
        SELECT * FROM err e WHERE e.kind NOT IN ('state', 'run')
            OR NOT EXISTS (SELECT 1 FROM err c WHERE c.pid = e.sid))
    SELECT l.span_id, l.run_id, l.start_ns,
           coalesce(l.role, p.role, 'unknown') AS role,
           CASE WHEN l.kind IN ('state', 'run', 'task', 'merge') OR l.step IS NOT NULL THEN l.step_kind
                ELSE coalesce(p.step_kind, l.step_kind) END AS step_kind,
           error_type(l.error) AS error_type,
           norm_msg(l.error) AS message
    FROM leaf l LEFT JOIN spans p ON p.sid = l.pid
""", ["role", "step_kind", "error_type", "message"],
    "format('{} fails in {} ({}): {}', role, step_kind, error_type, message)")


# -- interventions: where a human had to step in --------------------------------------------------

_WAITS = """
    SELECT t.run_id, t.seq, t.at_ns, t.from_state, t.reason, wait_cause(t.reason) AS cause,
           coalesce((SELECT s.role FROM steps s WHERE s.run_id = t.run_id AND s.state = t.from_state
                     ORDER BY s.at_ns DESC, s.attempt DESC LIMIT 1), 'unknown') AS role
    FROM transitions t WHERE t.to_state = 'AWAITING_APPROVAL'
"""

INTERVENTIONS = _union(
    _grouped("intervention", f"""
        -- the n-th wait of a run in a state is evidenced by the n-th span of that state ending in AWAITING_APPROVAL
        SELECT s.span_id, w.run_id, w.at_ns AS start_ns, 'awaiting_approval' AS trigger, w.role, w.cause
        FROM (SELECT *, row_number() OVER (PARTITION BY run_id, from_state ORDER BY seq) AS nth FROM ({_WAITS})) w
        LEFT JOIN (SELECT span_id, run_id, name,
                          row_number() OVER (PARTITION BY run_id, name ORDER BY start_ns) AS nth
                   FROM spans WHERE kind = 'state' AND state_to = 'AWAITING_APPROVAL') s
               ON s.run_id = w.run_id AND s.name = 'state ' || w.from_state AND s.nth = w.nth
    """, ["trigger", "role", "cause"], "format('{} waited for a human: {}', role, cause)"),
    _grouped("intervention", f"""
        SELECT NULL::VARCHAR AS span_id, t.run_id, t.at_ns AS start_ns, 'resumed' AS trigger,
               coalesce(w.role, 'unknown') AS role,
               CASE WHEN t.event = 'RESUME' THEN 'paused' ELSE coalesce(w.cause, 'unknown') END AS cause
        FROM transitions t
        LEFT JOIN ({_WAITS}) w ON w.run_id = t.run_id AND w.seq < t.seq AND t.event = 'APPROVE'
        WHERE t.event IN ('APPROVE', 'RESUME')
        QUALIFY row_number() OVER (PARTITION BY t.seq ORDER BY w.seq DESC NULLS LAST) = 1
    """, ["trigger", "role", "cause"], "format('a human resumed {} after: {}', role, cause)"),
    _grouped("intervention", """
        SELECT span_id, run_id, start_ns, 'review_rejected' AS trigger, role, 'rework requested' AS cause
        FROM spans WHERE kind = 'agent' AND step LIKE '%/rework-%'
        UNION ALL
        SELECT span_id, run_id, start_ns, 'review_rejected', 'reviewer', 'feature review requests changes'
        FROM spans WHERE kind = 'task' AND verdict = 'request_changes'
    """, ["trigger", "role", "cause"], "format('review sent {} back: {}', role, cause)"),
    _grouped("intervention", """
        SELECT span_id, run_id, start_ns, 'fix_loop_exhausted' AS trigger, 'bug_fixer' AS role,
               'task tests still fail' AS cause
        FROM spans WHERE kind = 'task' AND name LIKE 'build_task %' AND fix_attempts >= 3 AND task_status = 'failed'
        UNION ALL
        SELECT NULL, run_id, at_ns, 'fix_loop_exhausted', 'bug_fixer', 'suite still fails'
        FROM steps WHERE step = 'fix.3'
    """, ["trigger", "role", "cause"], "format('{} exhausted its fix attempts: {}', role, cause)"),
)


# -- capability gaps: kinds of work no agent handles well ----------------------------------------

_TASKS = """
    WITH plan AS (
        SELECT run_id, t FROM (
            SELECT run_id, at_ns,
                   unnest(from_json(output, '{"tasks": [{"id": "VARCHAR", "type": "VARCHAR"}]}').tasks) AS t
            FROM steps WHERE step = 'plan' AND output IS NOT NULL)
        QUALIFY row_number() OVER (PARTITION BY run_id, t.id ORDER BY at_ns DESC) = 1),
    attempt AS (
        SELECT span_id, run_id, start_ns, task_id, status, task_status, fix_attempts, language, task_key
        FROM spans WHERE kind = 'task' AND name LIKE 'build_task %'),
    retried AS (SELECT task_key FROM attempt GROUP BY task_key HAVING count(*) > 1),
    first AS (  -- a task's first attempt: what the agents did before any human stepped in. Most tasks have
                -- one attempt; only the (run, task) keys, hashed, of those retried go through the window
        SELECT * FROM attempt ANTI JOIN retried USING (task_key)
        UNION ALL
        SELECT * FROM (SELECT * FROM attempt SEMI JOIN retried USING (task_key))
        QUALIFY row_number() OVER (PARTITION BY task_key ORDER BY start_ns) = 1)
    SELECT s.span_id, s.run_id, s.start_ns, s.task_id, s.status, s.task_status, s.fix_attempts, s.language,
           coalesce(p.t.type, 'unknown') AS task_type
    FROM first s LEFT JOIN plan p ON p.run_id = s.run_id AND p.t.id = s.task_id
"""

CAPABILITY_GAPS = _union(
    # by task type, and by the language of the files a task changed (``aigentflow.task.language``)
    f"""
    SELECT 'capability_gap' AS kind, concat_ws('|', dimension, value) AS key,
           format(CASE dimension WHEN 'task_type' THEN '{{}} tasks' ELSE 'tasks in {{}}' END
                  || ' succeed {{}} of {{}} times', value, count(*) FILTER (WHERE status = 'ok'), count(*)) AS title,
           count(*) FILTER (WHERE status <> 'ok') AS count,
           min(start_ns) AS first_ns, max(start_ns) AS last_ns,
           1.0 - count(*) FILTER (WHERE status = 'ok') / count(*) AS score,
           (list(span_id ORDER BY start_ns DESC) FILTER (WHERE status <> 'ok'))[1:50] AS span_ids,
           (list_distinct(list(run_id) FILTER (WHERE status <> 'ok')))[1:50] AS run_ids,
           json_object('dimension', dimension, dimension, value, 'tasks', count(*),
                       'succeeded', count(*) FILTER (WHERE status = 'ok'))::VARCHAR AS details
    FROM (SELECT span_id, run_id, start_ns, status,
                 unnest([{{'dimension': 'task_type', 'value': task_type}},
                         {{'dimension': 'language', 'value': language}}], recursive := true)
          FROM ({_TASKS}) AS task) AS task
    WHERE value IS NOT NULL
    GROUP BY dimension, value
    HAVING count(*) >= {MIN_TASKS} AND count(*) FILTER (WHERE status = 'ok') < {LOW_SUCCESS} * count(*)
    """,
    _grouped("capability_gap", """
        SELECT span_id, run_id, start_ns, 'tool_refused' AS dimension, coalesce(role, 'unknown') AS role,
               coalesce(tool, split_part(name, ' ', 2)) AS tool
        FROM spans WHERE kind = 'tool' AND refused
    """, ["dimension", "role", "tool"], "format('{} asks for {}, which it may not use', role, tool)"),
    # a skill picked as relevant to the agent's task that its role version may not use (``aigentflow.skills.withheld``)
    _grouped("capability_gap", """
        SELECT span_id, run_id, start_ns, 'skill_missing' AS dimension, coalesce(role, 'unknown') AS role, skill
        FROM (SELECT *, unnest(string_split(skills_withheld, ',')) AS skill
              FROM spans WHERE kind = 'agent' AND skills_withheld IS NOT NULL AND skills_withheld <> '')
    """, ["dimension", "role", "skill"],
        "format('{} needed the skill {}, which its version may not use', role, skill)"),
)


# -- routing inefficiencies -----------------------------------------------------------------------

_IMPLEMENTERS = "('tester', 'bug_fixer', 'reviewer')"

ROUTING = _union(
    _grouped("routing", f"""
        SELECT span_id, run_id, start_ns, 'rerouted' AS pattern, from_role, role AS to_role FROM (
            SELECT span_id, run_id, start_ns, role,
                   lag(role) OVER w AS from_role, lag(status) OVER w AS from_status
            FROM spans WHERE kind = 'agent' AND step LIKE 'build/%' AND role NOT IN {_IMPLEMENTERS}
            WINDOW w AS (PARTITION BY task_key ORDER BY start_ns))  -- (run, task of the build step), hashed
        WHERE from_status = 'error' AND from_role <> role
    """, ["pattern", "from_role", "to_role"], "format('tasks go to {} after {} fails them', to_role, from_role)"),
    _grouped("routing", f"""
        SELECT span_id, run_id, start_ns, 'extra_fix_rounds' AS pattern, task_type FROM ({_TASKS})
        WHERE fix_attempts >= 2 AND status = 'ok'
        UNION ALL
        SELECT NULL, run_id, at_ns, 'extra_fix_rounds', 'suite' FROM steps WHERE step = 'fix.2'
    """, ["pattern", "task_type"], "format('{} work needs more than one fix round', task_type)"),
    _grouped("routing", f"""
        WITH loops AS (  -- (run, prompt hash) sent LOOP_CALLS times or more, among the calls sent twice or more
            SELECT arg_min(m.span_id, m.start_ns) AS span_id, any_value(m.run_id) AS run_id,
                   min(m.start_ns) AS start_ns, any_value(m.role) AS role, any_value(m.pid) AS pid
            FROM repeated_model_calls m GROUP BY m.loop_key HAVING count(*) >= {LOOP_CALLS})
        SELECT l.span_id, l.run_id, l.start_ns, 'prompt_loop' AS pattern, coalesce(l.role, 'unknown') AS role,
               coalesce(p.step_kind, 'unknown') AS step_kind
        FROM loops l LEFT JOIN spans p ON p.sid = l.pid
    """, ["pattern", "role", "step_kind"],
        "format('{} sends the same prompt {}+ times in {}', role, " + str(LOOP_CALLS) + ", step_kind)"),
    _grouped("routing", f"""
        WITH agent AS (
            SELECT span_id, run_id, start_ns, role, step_kind, cost_usd
            FROM spans WHERE kind = 'agent' AND cost_usd IS NOT NULL),
        typical AS (
            SELECT step_kind, median(cost_usd) AS median_cost FROM agent GROUP BY step_kind
            HAVING count(*) >= {MIN_COST_SAMPLES} AND median(cost_usd) > 0)
        SELECT a.span_id, a.run_id, a.start_ns, 'cost_outlier' AS pattern, a.role, a.step_kind
        FROM agent a JOIN typical t USING (step_kind) WHERE a.cost_usd > {COST_FACTOR} * t.median_cost
    """, ["pattern", "role", "step_kind"],
        f"format('{{}} steps of {{}} cost over {COST_FACTOR:g}x their median', step_kind, role)"),
)

QUERY_CLASSES: dict[str, str] = {
    "failure": FAILURES,
    "intervention": INTERVENTIONS,
    "capability_gap": CAPABILITY_GAPS,
    "routing": ROUTING,
}
"""Kind -> the SQL that finds its findings."""
