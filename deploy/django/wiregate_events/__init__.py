"""wiregate_events: the events wiregate gateways upload, stored exactly once.

Add "rest_framework", "rest_framework.authtoken" and "wiregate_events" to INSTALLED_APPS,
include "wiregate_events.urls" in the project's urls, migrate, and give each gateway a
user with a token (see deploy/django/README.md).
"""
