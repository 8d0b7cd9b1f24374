"""FIT_DIR/fit.json's one checked reader (brainsim/twin/fit_store.py read_record), which fork, follow, the
fit's report and the plans share: a broken record is a StoreError naming the file and what is wrong."""

import json

import pytest

from brainsim.errors import StoreError
from brainsim.twin.fit_store import read_record


@pytest.mark.parametrize(
    "text, needs, message",
    [
        ("{not json", (), "unreadable fit record"),
        ("[1, 2]", (), "not a JSON object"),
        (json.dumps({"set": []}), ("config",), 'no "config" \\(the fitted config file\\)'),
        (json.dumps({"config": 3}), ("config",), 'no "config"'),
        (json.dumps({"method": {}, "parameters_file": "f.yaml", "set": "a=1"}), ("method",), '"set"'),
        (json.dumps({"set": ["a=1", 2]}), (), "not a list of KEY.PATH=VALUE"),
    ],
)
def test_a_broken_record_names_the_file_and_the_fault(tmp_path, text, needs, message):
    path = tmp_path / "fit.json"
    path.write_text(text)
    with pytest.raises(StoreError, match=message) as caught:
        read_record(path, needs)
    assert str(path) in str(caught.value)


def test_a_record_is_read_whole(tmp_path):
    path = tmp_path / "fit.json"
    record = {"config": "c.yaml", "parameters_file": "f.yaml", "method": {"kind": "eki"}, "set": ["a.b=1"]}
    path.write_text(json.dumps(record))
    assert read_record(path, ("config", "parameters_file", "method")) == record
    with pytest.raises(StoreError, match="unreadable"):
        read_record(tmp_path / "missing.json")
