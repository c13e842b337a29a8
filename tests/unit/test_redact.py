"""redact(): known secret values and anything that looks like a secret are masked."""

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils.redact import redact, redact_data, secrets_from_env


def test_known_values_are_masked_wherever_they_appear():
    assert redact("login with hunter22 failed; hunter22 again", ["hunter22"]) == "login with *** failed; *** again"
    assert redact("a longer-secret and its longer-secret-plus", ["longer-secret", "longer-secret-plus"]) == \
        "a *** and its ***"


def test_short_and_empty_values_do_not_mask_ordinary_words():
    assert redact("on sms", ["on", "", None, "sms"]) == "on sms"


@pytest.mark.parametrize("text, expected", [
    ("SECRET_KEY=abc123def", "SECRET_KEY=***"),
    ("export SECRET_KEY='abc 1' more", "export SECRET_KEY='***' more"),
    ("DB_PASSWORD: s3cr3t rest", "DB_PASSWORD: *** rest"),
    ('{"password": "p\\"w", "user": "sms"}', '{"password": "***", "user": "sms"}'),
    ("api_token=xyz&page=2", "api_token=***&page=2"),
    ("DATABASE_URL=postgresql+psycopg2://sms:pw-123@db:5432/sms",
     "DATABASE_URL=postgresql+psycopg2://sms:***@db:5432/sms"),
    ("cannot connect to mysql://root:toor@127.0.0.1/x", "cannot connect to mysql://root:***@127.0.0.1/x"),
    ("ALTER ROLE sms PASSWORD 'it''s'", "ALTER ROLE sms PASSWORD '***'"),
    ("CREATE USER x IDENTIFIED BY 'pw'", "CREATE USER x IDENTIFIED BY '***'"),
])
def test_things_that_look_like_secrets_are_masked(text, expected):
    assert redact(text) == expected


def test_ordinary_text_is_left_alone():
    for text in ("GET /api/v1/students 200 12 ms", "password authentication failed for user \"sms\"",
                 "SECRET_KEY is missing or shorter than 32 characters", "http://127.0.0.1:8080/health"):
        assert redact(text) == text


def test_nested_data_values_are_redacted_keys_kept():
    data = {"reason": "pw hunter22", "list": ["SECRET_KEY=x1234", 3], "n": 1.5, "password": None}
    assert redact_data(data, ["hunter22"]) == {"reason": "pw ***", "list": ["SECRET_KEY=***", 3], "n": 1.5,
                                               "password": None}


def test_secrets_from_a_container_environment():
    env = ["SECRET_KEY=0123456789abcdef0123456789abcdef", "DATABASE_URL=postgresql+psycopg2://sms:dbpass-9@db/sms",
           "PATH=/usr/bin", "RATE_LIMIT_PER_MINUTE=60", "MYSQL_PWD=abc", "API_TOKEN="]
    assert secrets_from_env(env) == ["0123456789abcdef0123456789abcdef", "dbpass-9"]
    assert secrets_from_env({"POSTGRES_PASSWORD": "pgpass-1"}) == ["pgpass-1"]


def test_each_earlier_secret_key_of_a_container_environment():
    fallbacks = '[{"expires":"2026-05-01T12:00:00Z","key":"%s"},"%s"]' % ("k" * 48, "m" * 48)
    assert secrets_from_env(["SECRET_KEY_FALLBACKS=" + fallbacks]) == [fallbacks, "k" * 48, "m" * 48]
    assert secrets_from_env(["SECRET_KEY_FALLBACKS=[not json"]) == ["[not json"]
