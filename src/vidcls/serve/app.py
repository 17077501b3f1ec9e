"""`create_app`: the HTTP API and the web page over one loaded model.

The model is loaded in the lifespan, never at import, so importing this module (and building
the OpenAPI schema) is cheap. Handlers are short: they take the upload, call the `Predictor`
and return a Pydantic model; every error becomes `{"detail": "..."}` with no stack trace.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, AsyncIterator

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from vidcls.defaults import SERVE_BATCH_WAIT_MS, SERVE_MAX_BATCH, SERVE_MAX_UPLOAD_MB
from vidcls.errors import VideoReadError
from vidcls.inference.prediction import VideoClassifier
from vidcls.serve.memory import limit_malloc_arenas
from vidcls.serve.predictor import Predictor
from vidcls.serve.schemas import ErrorResponse, HealthResponse, LabelsResponse, PredictOptions, PredictResponse
from vidcls.serve.uploads import FILE_FIELD, process_upload_dir, received_upload

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
SETTINGS_ENV = "VIDCLS_SERVE_SETTINGS"
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
# The handler reads the multipart stream itself, so FastAPI cannot infer the body for /docs.
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object",
            "required": [FILE_FIELD],
            "properties": {FILE_FIELD: {"type": "string", "format": "binary", "description": "The video."}},
        }}},
    }
}
ERROR_RESPONSES = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "The multipart body is malformed.",
        413: "The upload is over the size limit.",
        415: "Not multipart/form-data, or the file is not a video that can be decoded.",
        422: "Missing or empty file, or an option out of range.",
    }.items()
}


@dataclass(frozen=True)
class ServeSettings:
    """Per-app limits and paths, read by the handlers from `app.state`."""

    tmp_dir: Path  # each server process keeps its uploads in a folder of its own under this one
    max_upload_bytes: int

    @property
    def max_upload_mb(self) -> float:
        return round(self.max_upload_bytes / 2**20, 2)


router = APIRouter()


def get_predictor(request: Request) -> Predictor:
    return request.app.state.predictor


def get_settings(request: Request) -> ServeSettings:
    return request.app.state.settings


def get_upload_dir(request: Request) -> Path:
    return request.app.state.upload_dir


PredictorDep = Annotated[Predictor, Depends(get_predictor)]
SettingsDep = Annotated[ServeSettings, Depends(get_settings)]
UploadDirDep = Annotated[Path, Depends(get_upload_dir)]


@router.get("/", include_in_schema=False)
def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers={"Content-Security-Policy": PAGE_POLICY})


@router.get("/docs", include_in_schema=False)
def docs(request: Request) -> HTMLResponse:
    """Swagger UI from copies of its files in static/: FastAPI's default /docs loads them from a
    CDN, which an offline machine cannot reach."""
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url, title="vidcls API", swagger_favicon_url="data:,",
        swagger_js_url="/static/swagger-ui-bundle.js", swagger_css_url="/static/swagger-ui.css",
    )


@router.get("/health")
def health(predictor: PredictorDep, settings: SettingsDep) -> HealthResponse:
    """The model is loaded and the server answers."""
    return HealthResponse(
        model=predictor.model_name, device=predictor.device, labels=len(predictor.classifier.labels),
        max_upload_mb=settings.max_upload_mb,
    )


@router.get("/labels")
def labels(predictor: PredictorDep) -> LabelsResponse:
    """Every label the model knows, in its class order."""
    return LabelsResponse(labels=predictor.classifier.labels)


@router.post("/predict", responses=ERROR_RESPONSES, openapi_extra=UPLOAD_BODY)
async def predict(
    request: Request, options: Annotated[PredictOptions, Query()], predictor: PredictorDep, settings: SettingsDep,
    upload_dir: UploadDirDep,
) -> PredictResponse:
    """Classify an uploaded video (multipart field `file`).

    The options can also be sent as form fields next to the file; those win over the query.
    """
    async with received_upload(request, upload_dir, settings.max_upload_bytes, PredictOptions.model_fields) as upload:
        return await predictor.predict(upload.path, _with_form_fields(options, upload.fields))


def _with_form_fields(options: PredictOptions, fields: dict[str, str]) -> PredictOptions:
    if not fields:
        return options
    try:
        return PredictOptions.model_validate({**options.model_dump(), **fields})
    except ValidationError as error:
        raise RequestValidationError(error.errors(include_url=False)) from error


async def _unreadable_video(request: Request, error: VideoReadError) -> JSONResponse:
    # error.reason, not str(error): the message must not carry the server's temp path.
    return JSONResponse({"detail": f"The file could not be read as a video: {error.reason}."}, status_code=415)


async def _server_error(request: Request, error: Exception) -> JSONResponse:
    logger.error("%s %s failed", request.method, request.url.path, exc_info=error)
    return JSONResponse({"detail": "Internal server error; the server log has the details."}, status_code=500)


def _add_exception_handlers(app: FastAPI) -> None:
    """Known problems -> a status and a sentence; anything else -> a logged, generic 500."""
    app.add_exception_handler(VideoReadError, _unreadable_video)
    app.add_exception_handler(Exception, _server_error)


def create_app(
    model_dir: str | Path,
    *,
    max_upload_mb: float = SERVE_MAX_UPLOAD_MB,
    device: str | None = None,
    tmp_dir: str | Path | None = None,
    max_batch: int = SERVE_MAX_BATCH,
    batch_wait_ms: float = SERVE_BATCH_WAIT_MS,
) -> FastAPI:
    """The vidcls API and page for the model in ``model_dir``; the model loads when the app starts.

    Uploads are written to a folder of this process's own under ``tmp_dir`` (default: the
    system temp dir), each removed after its request and the folder at shutdown (see
    `process_upload_dir`); ``max_batch=1`` turns request batching off.
    """
    settings = ServeSettings(Path(tmp_dir or tempfile.gettempdir()), int(max_upload_mb * 2**20))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        limit_malloc_arenas()  # before the model loads and the decode threads start
        predictor = Predictor(VideoClassifier(model_dir, device), max_batch=max_batch, batch_wait_ms=batch_wait_ms)
        with process_upload_dir(settings.tmp_dir) as upload_dir:
            async with predictor.running():
                app.state.predictor, app.state.upload_dir = predictor, upload_dir
                yield

    app = FastAPI(
        title="vidcls", summary="Classify uploaded videos with a trained vidcls model.", lifespan=lifespan,
        docs_url=None, redoc_url=None,  # /docs is served from local files, see `docs`
    )
    app.state.settings = settings
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _add_exception_handlers(app)
    return app


def create_app_from_env() -> FastAPI:
    """Factory for uvicorn worker processes, which cannot take arguments: `vidcls serve` puts
    `create_app`'s keyword arguments as JSON in the VIDCLS_SERVE_SETTINGS variable."""
    return create_app(**json.loads(os.environ[SETTINGS_ENV]))
