"""The model layer: every call goes through litellm.

- ``spec.py``: ``ModelSpec``, what an agent needs to call its model (travels with the call).
- ``cassette.py``: the replay cassette file format (record and replay).
- ``replay.py``: the replay provider, a litellm ``CustomLLM`` serving ``replay/<cassette>``.
- ``client.py``: structured calls: prompt in, validated pydantic output out, with retries,
  token and cost accounting, the emergency gate and the call budget.
- ``names.py``: checking a model name before a run starts.
"""
