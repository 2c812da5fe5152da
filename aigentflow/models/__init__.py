"""The model layer: every call goes through litellm.

- ``spec.py``: ``ModelSpec``, what an agent needs to call its model (travels with the call).
- ``cassette.py``: the replay cassette file format (record and replay), matching by prompt hash.
- ``replay.py``: the replay provider, a litellm ``CustomLLM`` serving ``replay/<cassette>``: it answers
  only prompts it has a recording for (a lenient replay, opt-in, answers by agent and step).
- ``transport.py``: how a completion reaches litellm (in process, or through the Model Gateway actor).
- ``client.py``: structured calls: prompt in, validated pydantic output out, with retries,
  token and cost accounting, the emergency gate and the call budget.
- ``names.py``: checking a model name and building the run's ``ModelSpec``.
- ``preflight.py``: before Ray starts, every configured model can be called (provider known, key
  variables set, cassette present), decided without importing litellm.
- ``providers.py`` / ``providers.json``: litellm's provider routing and key requirements, generated
  from the pinned litellm (``python -m aigentflow.models.providers --write``).
- ``catalog.py``: the configured providers and models (``providers.*``, ``models.*`` in config: type
  openai, anthropic or openai-compatible, ``api_base``, the *name* of the key's variable) as litellm
  deployments, their prices from litellm's cost map file, key checks; no litellm import.
- ``routing.py``: ``routing.rules``: the model per role and per task, by name or by capability tags,
  price ceiling and preference (cost, latency, order).
- ``router.py``: a configured model and its fallbacks as one ``litellm.Router`` (retries, fallbacks on
  errors, 429s, 5xx and timeouts, cooldowns); which deployment answered goes on the call's record and
  its ``chat`` span (``gen_ai.response.model``, ``aigentflow.model.fallback_from``).

Cost per call is litellm's (``response_cost``: the provider's reported usage x the cost map, or a
configured price); replayed calls cost 0. Steps store it per model (``StepUsage.by_model``), which
``aigentflow costs --by run|tenant|model|step`` adds up; ``benchmarks/cost_accuracy.py`` measured it
100% accurate over 300 calls of the three provider types (README, "Providers, models, routing and costs").
"""
