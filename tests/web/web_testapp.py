"""A tiny app around the web layer, standing in for the real app factory in these tests.

Also runnable for a look in a browser:
``uvicorn --app-dir tests/web web_testapp:make_app --factory --port 8765``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from yikatong.errors import InvalidInput, NotFound, YikatongError
from yikatong.web import i18n, pages
from yikatong.web.templating import STATIC_DIR, render, templates

# Pages that exercise the console layout and the macros the way a domain's page would.
TEST_TEMPLATES = {
    "_test/console.html": """{% extends "console/base.html" %}
{% from "components/ui.html" import empty_state, status_badge, pagination %}
{% block title %}测试 - {{ super() }}{% endblock %}
{% block breadcrumb %}<li class="breadcrumb-item active" aria-current="page">卡片</li>{% endblock %}
{% block console_title %}卡片{% endblock %}
{% block console_content %}
<div class="panel">
{{ status_badge("issued", "已发放") }} {{ status_badge("temporary_loss", "临时挂失") }}
<p>{{ 123456|fen }} · {{ 1234567|number }} · {{ when|datetime }} · {{ when|date }}</p>
{{ pagination(3, 12, "/staff/cards?page={page}") }}
{{ empty_state("暂无记录") }}
</div>
{% endblock %}""",
    "_test/form.html": """{% extends "base.html" %}
{% from "components/forms.html" import csrf_field, form_field %}
{% block content %}<form method="post" action="/x" class="container">{{ csrf_field() }}
{{ form_field("id_number", "身份证号", value="<b>", error="格式不正确", required=true,
              autocomplete="off", help="18 位", maxlength=18) }}
{{ form_field("password", "密码", type="password", value="secret") }}
{{ form_field("county", "县区", type="select", value="441625",
              options=[("441602", "源城区"), ("441625", "东源县")]) }}
</form>{% endblock %}""",
    "_test/context.html": """locale={{ locale }}
html_lang={{ html_lang }}
is_htmx={{ is_htmx }}
current_path={{ current_path }}
app_version={{ app_version }}
csrf_token={{ csrf_token }}
principal={{ principal.username if principal else "" }}
nav={{ nav_items|map(attribute="key")|join(",") }}
nav_labels={{ nav_items|map(attribute="label")|join(",") }}
active_nav={{ active_nav }}
title={{ _("Heyuan Social Security Card One-Card Services") }}
message={{ message|translate(params) }}
fen={{ -5|fen }}
""",
}
templates.env.loader = jinja2.ChoiceLoader(
    [jinja2.DictLoader(TEST_TEMPLATES), *([templates.env.loader] if templates.env.loader else [])]
)


@dataclass
class FakePrincipal:
    """Satisfies yikatong.web.navigation.Principal."""

    display_name: str = "陈晓明"
    username: str = "chenxm"
    role: str = "counter_clerk"
    role_label: str = "经办人员"
    region_code: str = "441602"
    region_name: str = "源城区"
    permissions: set[str] = field(default_factory=lambda: {"card.read"})

    def can(self, permission: str) -> bool:
        return permission in self.permissions


def make_app() -> FastAPI:
    """The landing page, the language switch, static files and two pages for the layouts."""
    app = FastAPI()
    app.add_middleware(i18n.LocaleMiddleware)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(YikatongError)
    async def domain_error(request: Request, exc: YikatongError) -> HTMLResponse:
        # The same context the real error handler (yikatong.problems) passes.
        return render(
            request,
            "error.html",
            {
                "status": exc.status,
                "code": exc.code,
                "title": exc.title,
                "detail": exc.detail,
                "detail_template": exc.detail_template,
                "params": exc.params,
                "errors": exc.extra.get("errors", []),
                "request_id": "req-test-1",
            },
            status_code=exc.status,
        )

    @app.get("/_test/console/cards", response_class=HTMLResponse)
    def console_page(request: Request, anonymous: bool = False) -> HTMLResponse:
        if not anonymous:
            request.state.principal = FakePrincipal()
            request.state.csrf_token = "tok-123"
        return render(
            request,
            "_test/console.html",
            {
                "flash_messages": [("success", "已保存")],
                "when": datetime(2024, 1, 2, 16, 30, tzinfo=UTC),
            },
        )

    @app.get("/_test/form", response_class=HTMLResponse)
    def form_page(request: Request) -> HTMLResponse:
        request.state.csrf_token = "tok-form"
        return render(request, "_test/form.html")

    @app.get("/_test/boom")
    def boom() -> None:
        raise InvalidInput("身份证号校验位不正确", field="id_number")

    @app.get("/_test/missing/{name}")
    def missing(name: str) -> None:
        raise NotFound("No card {name}", params={"name": name})

    @app.get("/_test/context/{rest:path}", response_class=HTMLResponse)
    def context_page(
        request: Request, rest: str, staff: bool = False, message: str = "", name: str = ""
    ) -> HTMLResponse:
        if staff:
            request.state.principal = FakePrincipal()
            request.state.csrf_token = "tok-ctx"
        return render(request, "_test/context.html", {"message": message, "params": {"name": name}})

    return app
