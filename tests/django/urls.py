"""The test project's URLconf: the sign-in routes, the admin (its login through Entra ID) and
a few views of each kind (``tests/django/views.py``)."""

from django.contrib import admin
from django.urls import include, path

from entra_auth.integrations.django.views import admin_login

from . import views

urlpatterns = [
    path("admin/login/", admin_login),
    path("admin/", admin.site.urls),
    path("", include("entra_auth.integrations.django.urls")),
    path("", views.home, name="home"),
    path("page", views.page, name="page"),
    path("html", views.html, name="html"),
    path("async-page", views.async_page, name="async_page"),
    path("admin-role", views.admin_role, name="admin_role"),
    path("async-admin-role", views.async_admin_role, name="async_admin_role"),
    path("needs-scope", views.needs_scope, name="needs_scope"),
    path("token", views.token, name="token"),
    path("graph-me", views.graph_me, name="graph_me"),
    path("cbv", views.Page.as_view(), name="cbv"),
    path("cbv-admin", views.AdminPage.as_view(), name="cbv_admin"),
    path("cbv-async", views.AsyncPage.as_view(), name="cbv_async"),
]
