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
"""
