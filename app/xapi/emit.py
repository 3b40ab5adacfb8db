"""Placeholder replaced below."""


def connect(app):
    pass
