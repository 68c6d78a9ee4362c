"""The spec's ``engine``: where the SQL runs. DuckDB embedded by default; Spark for data that
live in a cluster. The engine never changes the numbers, so it is not part of the spec hash."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class EngineSpec(BaseModel):
    """``engine: spark`` or ``engine: {kind: spark, master: spark://host:7077}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["duckdb", "spark"] = Field(
        "duckdb", description="duckdb (embedded, default) or spark (local or a cluster)."
    )
    master: str | None = Field(
        None,
        description="Spark master: local[*] (default), local[2], spark://host:7077, yarn, "
        "k8s://…, or a Spark Connect address sc://host:15002.",
    )
    connect_timeout_seconds: float = Field(
        60.0, gt=0, description="How long to wait for a remote master before giving up."
    )
    max_collect_rows: int = Field(
        5_000_000,
        gt=0,
        description="Most rows a design that needs unit-level data may bring to the driver.",
    )
    config: dict[str, str] = Field(
        default_factory=dict, description="Extra Spark settings, e.g. spark.executor.memory."
    )

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"kind": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _spark_only(self) -> EngineSpec:
        if self.kind == "duckdb" and (self.master or self.config):
            raise ValueError("master and config apply to engine kind spark only")
        return self
