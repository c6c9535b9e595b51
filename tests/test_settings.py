import importlib.util
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

import faceweb
from faceweb.env import env_bool, env_choice, env_int, env_list

SETTINGS_FILE = Path(faceweb.__file__).with_name("settings.py")


def fresh_settings(monkeypatch, tmp_path, **environment):
    """faceweb/settings.py run afresh in this environment, as a process starting would run
    it: pytest-django's settings have DEBUG forced off, so they cannot show what it does."""
    monkeypatch.delenv("DJANGO_DEBUG", raising=False)
    monkeypatch.setenv("DJANGO_SECRET_KEY", "a-test-key-" * 5)
    monkeypatch.setenv("FACEWEB_DATA_DIR", str(tmp_path))
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("faceweb.settings_under_test", SETTINGS_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_debug_is_off_unless_asked_for(monkeypatch, tmp_path):
    assert fresh_settings(monkeypatch, tmp_path).DEBUG is False
    assert fresh_settings(monkeypatch, tmp_path, DJANGO_DEBUG="false").DEBUG is False
    assert fresh_settings(monkeypatch, tmp_path, DJANGO_DEBUG="true").DEBUG is True


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
