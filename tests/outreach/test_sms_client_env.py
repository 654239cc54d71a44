"""The Twilio HTTP client resolves the proxy and CA environment once, for its one host,
instead of on every send (and still honours it)."""

from __future__ import annotations

from pathlib import Path

import pytest
import urllib3

from carecollect.channel.sms import PooledHttpClient


def test_proxy_environment_is_read_once_for_the_api_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = PooledHttpClient(None, 5)
    assert client.proxy_url == "http://proxy.invalid:3128"
    assert isinstance(client.pool, urllib3.ProxyManager)
    assert client.pool.proxy is not None
    assert client.pool.proxy.host == "proxy.invalid"
    # Changing the environment later does not change the client (resolved once).
    monkeypatch.setenv("HTTPS_PROXY", "http://other.invalid:3128")
    assert client.proxy_url == "http://proxy.invalid:3128"


def test_no_proxy_for_the_api_host_means_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    client = PooledHttpClient("http://127.0.0.1:8081", 5)
    assert client.proxy_url is None
    assert not isinstance(client.pool, urllib3.ProxyManager)


def test_ca_bundle_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                 "all_proxy", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    client = PooledHttpClient(None, 5)
    assert client.pool.connection_pool_kw["ca_certs"] == str(bundle)
    assert client.pool.connection_pool_kw["cert_reqs"] == "CERT_REQUIRED"
