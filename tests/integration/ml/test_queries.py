"""Listing (filter, created range, fields, keyset cursor), count and sample."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import httpx
import pytest

from tests.integration.ml.conftest import slug

pytestmark = pytest.mark.integration


def docs(name: str) -> str:
    return f"/v1/collections/{name}/documents"


@pytest.fixture
def loaded(client: httpx.Client, collection: str) -> str:
    """30 documents: split train/valid, label = i % 3, nested meta."""
    lines = "\n".join(
        json.dumps(
            {
                "i": i,
                "split": "train" if i < 20 else "valid",
                "label": i % 3,
                "meta": {"source": "cam", "size": {"w": i, "h": 2 * i}},
                "tags": ["t", i],
            }
        )
        for i in range(30)
    )
    response = client.post(
        f"{docs(collection)}:bulk",
        content=lines.encode(),
        headers={"content-type": "application/x-ndjson"},
    )
    assert response.status_code == 201
    return collection


def all_pages(client: httpx.Client, url: str, **params: str) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = client.get(url, params=query)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


def test_keyset_pages_cover_everything_once_in_order(client: httpx.Client, loaded: str) -> None:
    items = all_pages(client, docs(loaded), limit="7")
    assert len(items) == 30
    keys = [(item["created_at"], item["id"]) for item in items]
    assert keys == sorted(keys)
    assert len({item["id"] for item in items}) == 30


def test_filter_is_containment(client: httpx.Client, loaded: str) -> None:
    flt = json.dumps({"split": "train", "label": 1, "meta": {"source": "cam"}})
    items = all_pages(client, docs(loaded), filter=flt, limit="4")
    assert sorted(item["data"]["i"] for item in items) == [i for i in range(20) if i % 3 == 1]
    arrays = all_pages(client, docs(loaded), filter=json.dumps({"tags": [5]}))
    assert [item["data"]["i"] for item in arrays] == [5]
    assert all_pages(client, docs(loaded), filter=json.dumps({"split": "test"})) == []


def test_fields_projection(client: httpx.Client, loaded: str) -> None:
    items = all_pages(
        client, docs(loaded), fields="i,meta.size.w,missing", filter=json.dumps({"i": 4})
    )
    assert len(items) == 1
    assert items[0]["data"] == {"i": 4, "meta": {"size": {"w": 4}}, "missing": None}
    assert items[0]["version"] == 1
    whole = all_pages(client, docs(loaded), fields="meta,meta.size.w", filter='{"i": 4}')
    assert whole[0]["data"] == {"meta": {"source": "cam", "size": {"w": 4, "h": 8}}}


def test_created_range(client: httpx.Client, collection: str) -> None:
    first = client.post(docs(collection), json={"data": {"n": 1}}).json()
    second = client.post(docs(collection), json={"data": {"n": 2}}).json()
    after = all_pages(client, docs(collection), created_after=first["created_at"])
    assert [item["id"] for item in after] == [second["id"]]
    before = all_pages(client, docs(collection), created_before=second["created_at"])
    assert [item["id"] for item in before] == [first["id"]]
    late = datetime.fromisoformat(second["created_at"]) + timedelta(seconds=1)
    assert all_pages(client, docs(collection), created_after=late.isoformat()) == []


@pytest.mark.parametrize(
    ("params", "status", "loc"),
    [
        ({"filter": "not json"}, 422, ["query", "filter"]),
        ({"filter": "[1, 2]"}, 422, ["query", "filter"]),
        ({"filter": '"text"'}, 422, ["query", "filter"]),
        ({"fields": "a,,b"}, 422, ["query", "fields"]),
        ({"fields": "a..b"}, 422, ["query", "fields"]),
        ({"created_after": "yesterday"}, 422, ["query", "created_after"]),
        ({"created_before": "2024-01-01T00:00:00"}, 422, ["query", "created_before"]),
        ({"limit": "0"}, 422, ["query", "limit"]),
        ({"cursor": "bm9wZQ"}, 400, None),
        ({"cursor": "eyJ0IjoieCIsImkiOiJ5In0"}, 400, None),  # {"t":"x","i":"y"}
    ],
)
def test_bad_query_parameters(
    client: httpx.Client,
    collection: str,
    params: dict[str, str],
    status: int,
    loc: list[str] | None,
) -> None:
    response = client.get(docs(collection), params=params)
    assert response.status_code == status, response.text
    if loc is None:
        assert slug(response) == "invalid-cursor"
    else:
        assert slug(response) == "validation-failed"
        assert response.json()["errors"][0]["loc"] == loc


def test_count(client: httpx.Client, loaded: str) -> None:
    assert client.get(f"{docs(loaded)}:count").json() == {"count": 30}
    valid = client.get(f"{docs(loaded)}:count", params={"filter": '{"split": "valid"}'})
    assert valid.json() == {"count": 10}
    bad = client.get(f"{docs(loaded)}:count", params={"filter": "[]"})
    assert bad.status_code == 422


def test_sample_is_reproducible_with_a_seed(client: httpx.Client, loaded: str) -> None:
    def ids(**params: str) -> list[str]:
        response = client.get(f"{docs(loaded)}:sample", params=params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    first = ids(n="10", seed="split-1")
    assert len(first) == 10
    assert len(set(first)) == 10
    assert ids(n="10", seed="split-1") == first
    assert ids(n="10", seed="split-2") != first
    assert len(ids(n="100", seed="x")) == 30
    unseeded = client.get(f"{docs(loaded)}:sample", params={"n": "5"}).json()
    assert ids(n="5", seed=unseeded["seed"]) == [item["id"] for item in unseeded["items"]]
    filtered = client.get(
        f"{docs(loaded)}:sample", params={"n": "50", "seed": "s", "filter": '{"split": "valid"}'}
    )
    assert {item["data"]["split"] for item in filtered.json()["items"]} == {"valid"}
    assert len(filtered.json()["items"]) == 10


@pytest.mark.parametrize("n", ["0", "-1", "x", "10001", "²", "٣", "9" * 5000])
def test_sample_bad_n(client: httpx.Client, collection: str, n: str) -> None:
    response = client.get(f"{docs(collection)}:sample", params={"n": n})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "n"]


def test_count_takes_the_listing_filters_and_agrees_with_it(
    client: httpx.Client, loaded: str
) -> None:
    everything = all_pages(client, docs(loaded), limit="7")
    middle = str(everything[9]["created_at"])
    late = str(everything[24]["created_at"])
    for params in (
        {},
        {"created_after": middle},
        {"created_before": late},
        {"created_after": middle, "created_before": late},
        {"created_after": middle, "filter": '{"split": "valid"}'},
        {"created_after": "2999-01-01T00:00:00Z"},
    ):
        listed = all_pages(client, docs(loaded), limit="4", **params)
        counted = client.get(f"{docs(loaded)}:count", params=params)
        assert counted.status_code == 200, counted.text
        assert counted.json() == {"count": len(listed)}, params
    assert client.get(f"{docs(loaded)}:count", params={"created_after": middle}).json() == {
        "count": 20
    }


def test_sample_takes_fields_and_the_time_range(client: httpx.Client, loaded: str) -> None:
    everything = all_pages(client, docs(loaded), limit="100")
    middle = str(everything[9]["created_at"])
    response = client.get(
        f"{docs(loaded)}:sample",
        params={"n": "100", "seed": "s", "fields": "i,meta.size.w", "created_after": middle},
    )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert len(items) == 20
    assert all(set(item["data"]) == {"i", "meta"} for item in items)
    assert all(item["data"]["meta"] == {"size": {"w": item["data"]["i"]}} for item in items)


@pytest.mark.parametrize("count", [50, 51, 64])
def test_fields_up_to_the_maximum(client: httpx.Client, loaded: str, count: int) -> None:
    names = ["i", *(f"f{n}" for n in range(count - 2)), "meta.size.w"]
    for url in (docs(loaded), f"{docs(loaded)}:sample", f"/v1/collections/{loaded}/export"):
        response = client.get(url, params={"fields": ",".join(names)})
        assert response.status_code == 200, (url, response.text)
    item = client.get(docs(loaded), params={"fields": ",".join(names), "limit": "1"}).json()
    data = item["items"][0]["data"]
    assert len(data) == count  # i, f0.., and meta (holding meta.size.w)
    assert data["i"] == 0
    assert data["f0"] is None
    assert data["meta"] == {"size": {"w": 0}}
    nested = ",".join(f"meta.k{n}" for n in range(60))
    assert client.get(docs(loaded), params={"fields": nested}).status_code == 200


def test_more_fields_than_the_maximum_is_422(client: httpx.Client, loaded: str) -> None:
    response = client.get(docs(loaded), params={"fields": ",".join(f"f{n}" for n in range(65))})
    assert response.status_code == 422
    assert response.json()["errors"][0] == {"loc": ["query", "fields"], "msg": "at most 64 fields"}


@pytest.mark.parametrize(
    "when",
    [
        "0000-01-01T00:00:00Z",
        "10000-01-01T00:00:00Z",
        "9999-12-31T23:59:59-23:59",
        "0001-01-01T00:00:00+23:59",
        "2024-01-01T00:00:00+99:00",
    ],
)
def test_timestamps_out_of_range_are_422(client: httpx.Client, collection: str, when: str) -> None:
    for url in (
        docs(collection),
        f"{docs(collection)}:count",
        f"/v1/collections/{collection}/export",
    ):
        for name in ("created_after", "created_before"):
            response = client.get(url, params={name: when})
            assert response.status_code == 422, (url, name, response.text)
            assert response.json()["errors"][0]["loc"] == ["query", name]


def test_a_truncated_filter_is_called_invalid_json(client: httpx.Client, collection: str) -> None:
    response = client.get(docs(collection), params={"filter": '{"split": "tr'})
    assert response.status_code == 422
    assert response.json()["errors"][0]["msg"].startswith("is not valid JSON")


def test_crafted_cursors_are_400(client: httpx.Client, collection: str) -> None:
    import base64

    for key in (
        {"t": "0001-01-01T00:00:00+14:00", "i": "x"},
        {"t": "2024-01-01T00:00:00", "i": "x"},
        {"t": "2024-01-01T00:00:00+00:00", "i": "a\u0000b"},
    ):
        raw = base64.urlsafe_b64encode(json.dumps(key).encode()).rstrip(b"=").decode()
        response = client.get(docs(collection), params={"cursor": raw})
        assert response.status_code == 400, (key, response.text)
        assert slug(response) == "invalid-cursor"
    bad_name = base64.urlsafe_b64encode(b'{"n": "a\\u0000"}').decode()
    assert client.get("/v1/collections", params={"cursor": bad_name}).status_code == 400
