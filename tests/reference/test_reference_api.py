"""The reference API router, mounted on a minimal app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from yikatong.errors import YikatongError
from yikatong.reference.api import router
from yikatong.settings import get_settings

PREFIX = "/api/v1/reference"


def _app() -> FastAPI:
    app = FastAPI()
    app.include_router(router, prefix=PREFIX)

    @app.exception_handler(YikatongError)
    async def _problem(request: Request, exc: YikatongError) -> JSONResponse:
        body = {
            "type": f"/problems/{exc.code}",
            "code": exc.code,
            "detail": exc.detail,
            **exc.extra,
        }
        return JSONResponse(body, status_code=exc.status)

    return app


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("YIKATONG_REGION_CODE", "441600")
    get_settings.cache_clear()
    with TestClient(_app()) as test_client:
        yield test_client
    get_settings.cache_clear()


def test_default_lists_the_configured_citys_counties(client: TestClient) -> None:
    response = client.get(f"{PREFIX}/regions")
    assert response.status_code == 200
    body = response.json()
    assert [r["code"] for r in body] == ["441602", "441621", "441622", "441623", "441624", "441625"]
    assert body[-1] == {
        "code": "441625",
        "name": "东源县",
        "level": "county",
        "parent": "441600",
        "full_name": "广东省河源市东源县",
    }


def test_list_children_of_a_parent(client: TestClient) -> None:
    towns = client.get(f"{PREFIX}/regions", params={"parent": "441602"}).json()
    assert len(towns) == 8
    assert towns[0]["full_name"] == "广东省河源市源城区上城街道"
    assert len(client.get(f"{PREFIX}/regions", params={"parent": "440000"}).json()) == 21


def test_region_detail(client: TestClient) -> None:
    body = client.get(f"{PREFIX}/regions/441625").json()
    assert body["full_name"] == "广东省河源市东源县"
    assert len(body["children"]) == 21
    assert body["children"][0]["name"] == "仙塘镇"


def test_unknown_region_is_a_problem(client: TestClient) -> None:
    # Missing in the path: 404. Unknown as an input value: 422 unknown_region.
    response = client.get(f"{PREFIX}/regions/441699")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert client.get(f"{PREFIX}/regions", params={"parent": "123"}).status_code == 422


def test_check_valid_id_number(client: TestClient) -> None:
    response = client.post(
        f"{PREFIX}/id-numbers/check", json={"id_number": "441602 1985 0615 0028"}
    )
    assert response.status_code == 200
    assert response.json() == {
        "valid": True,
        "id_number_masked": "441602********0028",
        "region_code": "441602",
        "region_name": "广东省河源市源城区",
        "birth_date": "1985-06-15",
        "sex": "female",
    }
    assert "441602198506150028" not in response.text


def test_check_former_code(client: TestClient) -> None:
    body = client.post(
        f"{PREFIX}/id-numbers/check", json={"id_number": "442525197001010033"}
    ).json()
    assert body["region_name"] == "广东省河源县（旧代码）"
    other = client.post(f"{PREFIX}/id-numbers/check", json={"id_number": "11010519491231002X"})
    assert other.json()["region_name"] is None


def test_check_invalid_id_number(client: TestClient) -> None:
    response = client.post(f"{PREFIX}/id-numbers/check", json={"id_number": "441602198506150027"})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_id_number"
    assert body["reason"] == "check_digit"
    assert body["errors"][0]["field"] == "id_number"
    assert "441602198506150027" not in response.text


def test_openapi_describes_the_endpoints(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths) == {
        f"{PREFIX}/regions",
        f"{PREFIX}/regions/{{code}}",
        f"{PREFIX}/id-numbers/check",
    }
    assert paths[f"{PREFIX}/id-numbers/check"]["post"]["description"].startswith("Check a resident")
