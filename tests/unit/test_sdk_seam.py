"""The seam: every private member of singer-sdk, requests or urllib3 the tap relies on,
pinned by name.

If an upgrade renames one of these, changes its parameters, or stops calling it where
the tap expects, a test here fails (docs/development.md).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import click
import pytest
import requests
import urllib3
from singer_sdk import Stream, Tap
from singer_sdk import plugin_base as sdk_plugin_base
from singer_sdk.plugin_base import PluginBase

from tap_spanning.sdk_seam import PRIVATE_MEMBERS, seam_table_markdown, set_content
from tap_spanning.sdk_seam.command import CHECKED_FILE_OPTIONS, CheckedJsonFile
from tap_spanning.tap import TapSpanning

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "tap_spanning"
SDK_STREAM_CORE = Path(inspect.getfile(Stream))


def parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


class SdkTap(Tap):
    """The SDK's own command line, none of the seam's: the SDK builds it from the name."""

    name = "tap-sdk-only"


def option_named(command: click.Command, name: str) -> click.Parameter:
    (option,) = [param for param in command.params if param.name == name]
    return option


OWNERS = {
    "singer-sdk": {"PluginBase", "Stream", "Tap", "plugin_base"},
    "urllib3": {"HTTPConnectionPool"},
    "requests": {"Response"},
}
# The libraries whose private members only the seam may touch, as imported.
GUARDED = {"singer-sdk": "singer_sdk", "urllib3": "urllib3", "requests": "requests"}
# Public methods the seam lists: it relies on what they build, not only on their name.
PUBLIC_BUT_RELIED_ON = {"get_singer_command"}


def test_the_seam_lists_each_member_with_a_reason() -> None:
    assert len(PRIVATE_MEMBERS) <= 12
    for name, member in PRIVATE_MEMBERS.items():
        assert name.startswith("_") or name in PUBLIC_BUT_RELIED_ON, name
        assert member.owner in OWNERS[member.library], name
        assert len(member.reason) > 40, name


def test_the_readme_table_is_the_seams_table() -> None:
    readme = (ROOT / "docs" / "development.md").read_text()
    assert seam_table_markdown() in readme
    rows = [line for line in readme.splitlines() if line.startswith("| `")]
    assert len(rows) == len(PRIVATE_MEMBERS), "the docs list a member the seam does not"


def test_plugin_validate_config() -> None:
    assert parameters(PluginBase._validate_config) == ["self", "raise_errors"]
    # Called by the constructor, with the config already in place.
    source = inspect.getsource(PluginBase.__init__)
    assert "self._config = config_dict" in source
    assert source.index("self._config = config_dict") < source.index("self._validate_config(")


def test_plugin_config() -> None:
    # The mapping the SDK validates and later serves as `config`.
    source = inspect.getsource(PluginBase._validate_config)
    assert "self._config" in source or "self.config" in source
    config = inspect.getattr_static(PluginBase, "config")
    assert isinstance(config, property)
    assert config.fget is not None
    assert "self._config" in inspect.getsource(config.fget)


def test_plugin_env_var_config() -> None:
    # Read by the constructor when the config says ENV; the SDK's parse loads .env first.
    source = inspect.getsource(PluginBase.__init__)
    assert "config_dict.update(self._env_var_config)" in source
    env_var_config = inspect.getattr_static(PluginBase, "_env_var_config")
    assert "parse_environment_config" in inspect.getsource(env_var_config.fget)


def test_plugin_base_configinput() -> None:
    # What the --config callback hands on: the merged files and whether to read ENV.
    fields = dataclasses.fields(sdk_plugin_base._ConfigInput)
    assert [field.name for field in fields] == ["config", "parse_env"]
    assert parameters(PluginBase.cb_config) == ["ctx", "param", "value"]
    assert "_ConfigInput.from_cli_args(*value)" in inspect.getsource(PluginBase.cb_config)
    config_option = option_named(SdkTap.get_singer_command(), "config")
    assert config_option.is_eager  # read before --discover and --test run
    assert config_option.callback == SdkTap.cb_config
    # Every mode builds its tap from the callback's value, so the tap's check covers all.
    for mode in (Tap.invoke, Tap.cb_discover, Tap.cb_test):
        source = inspect.getsource(mode)
        assert "config=config.config" in source, mode
        assert "parse_env_config=config.parse_env" in source, mode
    for mode in (Tap.cb_discover, Tap.cb_test):
        assert 'ctx.params.get("config"' in inspect.getsource(mode), mode


def test_tap_get_singer_command() -> None:
    # The SDK's options read their file with click.File and hand it to invoke, which
    # reads it once with .read(): the seam swaps the type (the tap keeps only its digests:
    # TapSpanning.load_state).
    sdk_command = SdkTap.get_singer_command()
    assert set(CHECKED_FILE_OPTIONS) <= set(parameters(Tap.invoke))
    invoke = inspect.getsource(Tap.invoke)
    assert "state=None if state is None else load_json(state.read())" in invoke
    assert "catalog=None if catalog is None else load_json(catalog.read())" in invoke
    for name in CHECKED_FILE_OPTIONS:
        assert type(option_named(sdk_command, name).type) is click.File, name
        ours = option_named(TapSpanning.get_singer_command(), name)
        assert isinstance(ours.type, CheckedJsonFile), name
        assert ours.type.what == name
        assert ours.is_eager, name


def test_plugin_handle_termination() -> None:
    assert parameters(Tap._handle_termination) == ["self", "signum", "frame"]
    assert "self._handle_termination" in inspect.getsource(PluginBase._setup_signal_handlers)


def test_stream_write_activate_version_message() -> None:
    assert parameters(Stream._write_activate_version_message) == ["self", "full_table_version"]
    sync = inspect.getsource(Stream.sync)
    # Still sent at the start of sync, with the version it sets: the seam holds it back.
    assert re.search(
        r"self\._stream_version = .*\n\s*self\._write_activate_version_message\(", sync
    )


def test_stream_stream_version() -> None:
    assert "version=self._stream_version" in inspect.getsource(Stream._generate_record_messages)


def test_stream_write_record_message() -> None:
    assert parameters(Stream._write_record_message) == ["self", "record"]
    assert "self._write_record_message(record)" in inspect.getsource(Stream._sync_records)


def test_stream_write_schema_message() -> None:
    assert parameters(Stream._write_schema_message) == ["self"]
    assert "self._write_schema_message()" in inspect.getsource(Stream.sync)


def test_httpconnectionpool_get_conn() -> None:
    # Every request takes its connection here (urlopen), and gives it back with _put_conn.
    assert parameters(urllib3.HTTPConnectionPool._get_conn) == ["self", "timeout"]
    assert "conn = self._get_conn(timeout=pool_timeout)" in inspect.getsource(
        urllib3.HTTPConnectionPool.urlopen
    )


def test_response_content() -> None:
    # .content, .text and .json() read the body from _content once it is set.
    content = inspect.getattr_static(requests.Response, "content")
    assert content.fget is not None
    source = inspect.getsource(content.fget)
    assert "if self._content is False:" in source
    assert "return self._content" in source
    assert "_content" in requests.Response.__attrs__
    response = requests.Response()
    set_content(response, b'{"a": 1}')
    assert (response.content, response.text, response.json()) == (b'{"a": 1}', '{"a": 1}', {"a": 1})


@pytest.mark.parametrize("name", sorted(PRIVATE_MEMBERS))
def test_every_listed_member_has_its_own_test(name: str) -> None:
    tests = inspect.getsource(__import__(__name__, fromlist=["_"]))
    assert f"def {PRIVATE_MEMBERS[name].test_name(name)}(" in tests


def test_no_other_module_touches_a_private_member() -> None:
    modules = "|".join(GUARDED.values())
    private_import = re.compile(rf"(from|import) ({modules})(\.\w+)*\._\w")
    private_attribute = re.compile(rf"\b({modules})(\.\w+)*\._[a-z]")
    seam = PACKAGE / "sdk_seam"
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        assert not private_import.search(text), f"{path.name} imports a private module"
        if path.parent == seam:
            continue
        assert not private_attribute.search(text), f"{path.name} reaches a private member"
        for name in PRIVATE_MEMBERS:
            assert not re.search(rf"\b{name}\b", text), f"{path.name} uses {name}"


def test_the_seam_uses_no_member_it_does_not_list() -> None:
    text = "".join(path.read_text() for path in (PACKAGE / "sdk_seam").glob("*.py"))
    used = set(re.findall(r"(?:self|super\(\))\.(_[a-z]\w*)", text))
    own = {"_version_held", "_schema_written"}
    assert used - own <= set(PRIVATE_MEMBERS)
