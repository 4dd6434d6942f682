"""Robots behind the ``RobotInterface``: simulated (``sim``), networked (``network`` client,
``server``) and mocked (``mock``)."""
