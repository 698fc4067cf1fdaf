"""regions/sessions.py: the tools' boto3 sessions share the parsed service models, and nothing else."""

from __future__ import annotations

from pathlib import Path

import boto3
import botocore.loaders

from regions.sessions import new_session


def test_sessions_share_one_loader_but_read_their_credentials_each(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "first")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    first = new_session()
    first.client("ec2", region_name="us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "second")
    second = new_session()
    loader = first._session.get_component("data_loader")
    assert second._session.get_component("data_loader") is loader
    # A model parsed for the first session is the second's without reading the file again.
    reads = []
    load_file = botocore.loaders.JSONFileLoader.load_file
    monkeypatch.setattr(botocore.loaders.JSONFileLoader, "load_file",
                        lambda self, path, *rest: reads.append(path) or load_file(self, path, *rest))
    assert second.client("ec2", region_name="us-west-2").meta.service_model.service_name == "ec2"
    assert reads == []
    boto3_data = str(Path(boto3.__file__).parent / "data")
    assert loader.search_paths.count(boto3_data) == 1
    assert (first.get_credentials().access_key, second.get_credentials().access_key) == ("first", "second")
