"""The local stack: a real Kafka broker (KRaft, from Maven Central jars), Redis and the services.

``journeys up|down|status|setup`` are thin wrappers over these functions; the test fixtures
(tests/infra.py) and the demo call them directly.
"""
