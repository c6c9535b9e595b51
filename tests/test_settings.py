import pytest
from django.core.exceptions import ImproperlyConfigured

from faceweb.env import env_bool, env_choice, env_int, env_list


def test_debug_is_off_unless_asked_for():
    from django.conf import settings

    assert settings.DEBUG is False


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("Yes", True), ("off", False)])
def test_booleans_accept_the_usual_words(monkeypatch, value, expected):
    monkeypatch.setenv("X_FLAG", value)
    assert env_bool("X_FLAG") is expected


def test_a_bad_boolean_fails_loudly(monkeypatch):
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG"):
        env_bool("X_FLAG")


def test_a_bad_integer_fails_loudly(monkeypatch):
    monkeypatch.setenv("X_COUNT", "ten")
    with pytest.raises(ImproperlyConfigured, match="X_COUNT must be an integer"):
        env_int("X_COUNT", 3)


def test_lists_and_choices(monkeypatch):
    monkeypatch.setenv("X_HOSTS", "a.example, b.example,,")
    assert env_list("X_HOSTS") == ["a.example", "b.example"]
    monkeypatch.setenv("X_MODE", "loud")
    with pytest.raises(ImproperlyConfigured, match="one of quiet, normal"):
        env_choice("X_MODE", "quiet", ["quiet", "normal"])
