"""FastAPI dependencies: the services and the settings of the running app."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.config import Settings
from api.services import AppServices
from graph.pipeline import Pipeline


def get_services(request: Request) -> AppServices:
    """The app's services."""
    services: AppServices = request.app.state.services
    return services


def get_settings(request: Request) -> Settings:
    """The app's settings."""
    return get_services(request).settings


def get_pipeline(request: Request) -> Pipeline:
    """The loaded pipeline, or 503 while loading or after a failed load."""
    return get_services(request).require()


ServicesDep = Annotated[AppServices, Depends(get_services)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
