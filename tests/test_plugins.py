"""Plugin discovery through entry points, registries and error reporting."""

from __future__ import annotations

import textwrap

import pytest
from click.testing import CliRunner

from llbench.api.specs import MethodSpec
from llbench.cli.main import cli
from llbench.errors import DuplicateNameError, UnknownNameError
from llbench.pluginhost.host import PluginHost, get_host, reset_host
from llbench.pluginhost.registry import Registry


def _write_distribution(site, dist: str, module: str, code: str, entry: str) -> None:
    """A real installed distribution: a module plus a dist-info with entry_points.txt."""
    (site / f"{module}.py").write_text(textwrap.dedent(code))
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[llbench]\n{entry} = {module}\n")
    (info / "RECORD").write_text("")


THIRD_PARTY = """
    import torch
    from llbench.api.hookspecs import hookimpl
    from llbench.api.methods import Method
    from llbench.api.specs import MethodSpec

    class Invert(Method):
        def enhance(self, low):
            return 1.0 - low

    @hookimpl
    def register_methods(register):
        register(MethodSpec("invert", lambda cfg, dev: Invert(cfg, dev), "1 - x",
                            paper="Nobody 2026"))
"""


@pytest.fixture
def site(tmp_path, monkeypatch, home):
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    reset_host()
    yield site
    reset_host()


def test_third_party_distribution_is_discovered(site, home):
    _write_distribution(site, "llbench-invert", "llbench_invert", THIRD_PARTY, "invert")
    host = get_host()
    spec = host.method("invert")
    assert spec.paper == "Nobody 2026"
    info = {i.name: i for i in host.plugins()}["invert"]
    assert info.distribution == "llbench-invert" and info.version == "1.2.3"
    assert info.provides == {"method": ["invert"]} and info.error is None
    # built-ins load through the same group
    assert host.registry("dataset").origin("synthetic") == "synthetic"
    # and it shows up in the CLI
    out = CliRunner().invoke(cli, ["--home", str(home), "plugins"], terminal_width=250)
    assert out.exit_code == 0, out.output
    assert "llbench-invert" in out.output and "1.2.3" in out.output
    out = CliRunner().invoke(cli, ["--home", str(home), "methods"], terminal_width=250)
    assert "invert" in out.output and "Nobody 2026" in out.output


def test_broken_plugin_is_reported_and_others_still_work(site, home):
    _write_distribution(
        site, "llbench-broken", "llbench_broken", "raise ImportError('needs libfoo')\n", "broken"
    )
    _write_distribution(site, "llbench-invert", "llbench_invert", THIRD_PARTY, "invert")
    host = get_host()
    infos = {i.name: i for i in host.plugins()}
    assert "ImportError: needs libfoo" in infos["broken"].error
    assert host.method("invert").name == "invert"
    out = CliRunner().invoke(cli, ["--home", str(home), "plugins"], terminal_width=250)
    assert out.exit_code == 0 and "needs libfoo" in out.output


def test_plugin_whose_hook_raises_is_reported(site, home):
    code = """
        from llbench.api.hookspecs import hookimpl
        @hookimpl
        def register_methods(register):
            raise RuntimeError("bad hook")
    """
    _write_distribution(site, "llbench-badhook", "llbench_badhook", code, "badhook")
    host = get_host()
    infos = {i.name: i for i in host.plugins()}
    assert "RuntimeError: bad hook" in infos["badhook"].error
    assert "synthetic" in host.registry("dataset")


def test_duplicate_names_name_both_origins(site, home):
    code = THIRD_PARTY.replace('"invert"', '"synthetic-clash"')
    _write_distribution(site, "llbench-a", "llbench_a", code, "a")
    _write_distribution(site, "llbench-b", "llbench_b", code, "b")
    infos = {i.name: i for i in get_host().plugins()}
    assert "registered twice: by 'a' and by 'b'" in infos["b"].error


def test_llbench_plugins_env_limits_loading(monkeypatch, home):
    monkeypatch.setenv("LLBENCH_PLUGINS", "synthetic")
    host = PluginHost()
    assert [i.name for i in host.plugins()] == ["synthetic"]
    assert host.registry("method").names() == []


def test_registry_errors():
    reg = Registry("method", MethodSpec)
    reg.add(MethodSpec("lime", lambda c, d: None, "x"), origin="p1")
    with pytest.raises(DuplicateNameError, match="'p1' and by 'p2'"):
        reg.add(MethodSpec("lime", lambda c, d: None, "x"), origin="p2")
    with pytest.raises(UnknownNameError, match="Did you mean: lime"):
        reg.get("lme")
    with pytest.raises(TypeError, match="expected a MethodSpec"):
        reg.add("lime", origin="p3")


def test_spec_validation():
    with pytest.raises(ValueError, match="lower case"):
        MethodSpec("Bad Name", lambda c, d: None, "x")
    with pytest.raises(ValueError, match="supervision"):
        MethodSpec("ok", lambda c, d: None, "x", supervision="magic")


def test_in_process_registration_and_unregister(home):
    from plugin_fixtures import TestPlugin

    host = PluginHost()
    host.register(TestPlugin, "tests")
    assert "brighten" in host.registry("method")
    host.unregister("tests")
    assert "brighten" not in host.registry("method")
