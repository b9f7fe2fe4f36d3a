"""The service's settings, read from ``VERIFACT_*`` environment variables (and a .env file)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from graph.llm_settings import LLMSettings
from graph.report import MAX_CLAIMS, MAX_TOP_K

if TYPE_CHECKING:  # LangGraph, numpy and the models load when a pipeline is built, not to read settings
    from graph.pipeline import RunLimits
    from graph.services import PipelineConfig


class Settings(BaseSettings):
    """Every knob of the server; each field is ``VERIFACT_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="VERIFACT_", env_file=".env", extra="ignore")

    data_dir: str = "../shared/data"
    """Where the labelled data sets live (for preparing the default models and demo index)."""
    classifier_dir: str = "runs/cpu-minilm/model"
    index_dir: str = "runs/index"
    nli_model: str = "runs/cpu-minilm-nli/model"
    nli_params_file: str | None = None
    encoder_cache: str | None = None
    trace_db: str = "runs/traces.db"
    """A SQLite file path, or any SQLAlchemy URL (e.g. postgresql+psycopg://...) for several replicas."""

    llm_base_url: str | None = None
    """An OpenAI-compatible API root (OpenAI, vLLM, Ollama, llama.cpp, LM Studio)."""
    llm_model: str | None = None
    llm_api_key: SecretStr = SecretStr("")
    llm_timeout_s: float = Field(default=30.0, gt=0)
    llm_max_retries: int = Field(default=2, ge=0, le=10)
    llm_max_concurrency: int = Field(default=4, ge=1)
    llm_system_role: Literal["system", "user"] = "system"
    require_agreement: bool = False

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_text_chars: int = Field(default=20_000, ge=1)
    """Longer texts get 413."""
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    """Larger request bodies get 413 before they are parsed."""
    max_predict_sentences: int = Field(default=256, ge=1)
    max_documents: int = Field(default=1000, ge=1)
    """Documents per POST /documents."""
    otlp_endpoint: str | None = None
    """Export every run as OpenTelemetry spans (GenAI conventions) to this OTLP/HTTP traces URL,
    e.g. http://127.0.0.1:4318/v1/traces (Jaeger, Phoenix, Langfuse); needs the otel extra."""
    otlp_capture_content: bool = False
    max_concurrency: int = Field(default=8, ge=1, le=256)
    batch_wait_ms: float = Field(default=2.0, ge=0.0, le=100.0)
    onnx_spinning: bool = False
    """Let ONNX Runtime's idle threads spin-wait for work: faster single calls, slower under load."""
    model_threads: int = Field(default=1, ge=0, le=256)
    """Intra-op threads per ONNX model run; 0: one per core."""
    model_parallel: int = Field(default=0, ge=0, le=256)
    """Model runs at once per classifier, encoder or NLI call; 0: one per core."""
    batch_tokens: int = Field(default=256, ge=16)
    """Padded tokens per model run at most."""
    blocking_threads: int = Field(default=64, ge=1, le=4096)
    """Threads for blocking calls, most of which wait on a model batch (`graph.blocking`)."""
    search_mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    """Evidence ranking: dense and BM25 fused by reciprocal rank (hybrid), or either alone."""
    fusion: Literal["rrf", "convex"] = "rrf"
    """How hybrid merges dense and BM25: reciprocal rank, or weighted z-scored scores."""
    dense_weight: float = Field(default=1.0, ge=0.0)
    lexical_weight: float = Field(default=1.0, ge=0.0)
    rrf_k: int = Field(default=10, ge=1)
    """The fusion's rank constant: 1 / (rrf_k + rank)."""

    api_keys: SecretStr = SecretStr("")
    """Comma-separated API keys, each ``name:key`` or a bare key; none here or in the file: keys are off."""
    api_key_file: str | None = None
    """A file of API keys, one a line: ``name:key`` or ``name:key:admin``; ``#`` starts a comment."""
    admin_keys: SecretStr = SecretStr("")
    """Comma-separated names (or keys) of the keys that may add documents."""
    allow_open: bool = False
    """Let a server without API keys listen on an address other than loopback."""
    cors_origins: str = ""
    """Comma-separated origins that browsers may call the API from; empty: no cross-origin calls."""
    max_sentences: int = Field(default=200, ge=1)
    """Sentences a text may split into; more get 413 and a stored partial trace."""
    max_claims_cap: int = Field(default=MAX_CLAIMS, ge=1, le=MAX_CLAIMS)
    """The largest ``max_claims`` a request may ask for; more get 422."""
    max_top_k: int = Field(default=MAX_TOP_K, ge=1, le=MAX_TOP_K)
    """The largest ``top_k`` a request may ask for; more get 422."""
    max_concurrent_per_key: int = Field(default=4, ge=1)
    """Requests one API key (or, with keys off, one client address) may have running; more get 429."""
    request_timeout_s: float = Field(default=60.0, gt=0)
    """Seconds a verification run may take; past it the answer is 503 and the partial trace is stored."""
    shutdown_timeout_s: float = Field(default=20.0, gt=0)
    """On SIGTERM, seconds to let running requests finish; then they are cancelled (their partial
    traces stored as cancelled) and the server exits. Keep it under the orchestrator's kill grace."""

    def cors_origin_list(self) -> list[str]:
        """The CORS origins, one per comma-separated entry."""
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    def run_limits(self) -> RunLimits:
        """What the pipeline allows one run."""
        from graph.pipeline import RunLimits

        return RunLimits(max_sentences=self.max_sentences, timeout_s=self.request_timeout_s)

    def llm(self) -> LLMSettings | None:
        """The LLM judge's settings, when an endpoint is configured."""
        if not self.llm_model and not self.llm_base_url:
            return None
        if not self.llm_model:
            raise ValueError("VERIFACT_LLM_BASE_URL is set but VERIFACT_LLM_MODEL is not")
        return LLMSettings(
            model=self.llm_model,
            base_url=self.llm_base_url,
            api_key=self.llm_api_key.get_secret_value() or "not-needed",
            timeout_s=self.llm_timeout_s,
            max_retries=self.llm_max_retries,
            max_concurrency=self.llm_max_concurrency,
            system_role=self.llm_system_role,
        )

    @model_validator(mode="after")
    def _some_fusion_weight(self) -> Settings:
        if self.dense_weight + self.lexical_weight == 0:
            raise ValueError("VERIFACT_DENSE_WEIGHT and VERIFACT_LEXICAL_WEIGHT cannot both be 0")
        return self

    def pipeline(self) -> PipelineConfig:
        """The pipeline's configuration."""
        from graph.nli_model import NLISettings
        from graph.services import PipelineConfig

        return PipelineConfig(
            classifier_dir=self.classifier_dir,
            index_dir=self.index_dir,
            encoder_cache=self.encoder_cache,
            nli=NLISettings(model=self.nli_model, params_file=self.nli_params_file),
            llm=self.llm(),
            require_agreement=self.require_agreement,
            trace_store=self.trace_db,
            otlp_endpoint=self.otlp_endpoint,
            otlp_capture_content=self.otlp_capture_content,
            max_concurrency=self.max_concurrency,
            batch_wait_ms=self.batch_wait_ms,
            onnx_spinning=self.onnx_spinning,
            model_threads=self.model_threads,
            model_parallel=self.model_parallel,
            batch_tokens=self.batch_tokens,
            blocking_threads=self.blocking_threads,
            search_mode=self.search_mode,
            fusion=self.fusion,
            dense_weight=self.dense_weight,
            lexical_weight=self.lexical_weight,
            rrf_k=self.rrf_k,
        )


def settings_error_message(exc: ValidationError) -> str:
    """One line naming each bad ``VERIFACT_*`` variable, what it should be and what it was."""
    parts = []
    for err in exc.errors():
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["loc"]:
            name = "VERIFACT_" + "_".join(str(p) for p in err["loc"]).upper()
            shown = "" if "KEY" in name else f" (got {err['input']!r})"  # never echo a secret
            parts.append(f"{name}: {message}{shown}")
        else:
            parts.append(message)
    return "bad settings: " + "; ".join(parts)
