"""The Twilio HTTP client resolves the proxy environment once, for its one host, instead
of requests re-reading os.environ on every send (and still honours it)."""

from __future__ import annotations

import pytest

from carecollect.channel.sms import BaseUrlHttpClient


def test_proxy_environment_is_read_once_for_the_api_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = BaseUrlHttpClient(None, 5)
    assert client.session is not None
    assert client.session.trust_env is False
    assert client.proxy == {"https": "http://proxy.invalid:3128"}
    # Changing the environment later does not change the client (resolved once).
    monkeypatch.setenv("HTTPS_PROXY", "http://other.invalid:3128")
    assert client.proxy == {"https": "http://proxy.invalid:3128"}


def test_no_proxy_for_the_api_host_means_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    client = BaseUrlHttpClient("http://127.0.0.1:8081", 5)
    assert client.proxy == {}
