"""All configuration, from the environment (prefix METACENTRIC_) or .env.

Mode `sandbox` (the default) points every client at the local sandbox with its fake credentials.
Mode `live` refuses to start until every credential it needs is set, and names the missing ones.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# Paths under one sandbox server at which each platform's fake answers (a stand-in for each host).
SANDBOX_PREFIX = {
    "graph": "/graph",  # graph.facebook.com: Meta Marketing API and Instagram Graph API
    "rupload": "/rupload",  # rupload.facebook.com: Instagram resumable uploads
    "youtube": "/youtube/",  # www.googleapis.com (Data API + uploads); a discovery rootUrl ends in /
    "youtube_analytics": "/youtubeanalytics/",  # youtubeanalytics.googleapis.com
    "google_token": "/google/token",  # oauth2.googleapis.com/token
    "tiktok": "/tiktok",  # open.tiktokapis.com
    "x": "/x",  # api.x.com
}

# Credentials the sandbox issues to itself; real ones are required in live mode.
SANDBOX_TOKEN = "sandbox-token"
SANDBOX_APP_SECRET = "sandbox-app-secret"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="METACENTRIC_", env_file=".env", extra="ignore", populate_by_name=True
    )

    mode: Literal["sandbox", "live"] = "sandbox"
    var_dir: Path = Path("var")
    database_url: str = ""  # empty: sqlite file under var_dir
    sandbox_url: str = ""  # empty in sandbox mode: start one in-process on a free port

    api_token: SecretStr = SecretStr("")
    # Used for campaigns created outside Metacentric (named "Artist - Song") that have no release registered.
    default_video_path: str = ""
    meta_webhook_verify_token: SecretStr = Field(
        default=SecretStr(""),
        validation_alias=AliasChoices("META_WEBHOOK_VERIFY_TOKEN", "METACENTRIC_META_WEBHOOK_VERIFY_TOKEN"),
    )
    meta_webhook_app_secret: SecretStr = Field(
        default=SecretStr(""),
        validation_alias=AliasChoices("META_WEBHOOK_APP_SECRET", "METACENTRIC_META_WEBHOOK_APP_SECRET"),
    )
    unified_analytics_endpoint: str = Field(
        default="",
        validation_alias=AliasChoices("UNIFIED_ANALYTICS_ENDPOINT", "METACENTRIC_UNIFIED_ANALYTICS_ENDPOINT"),
    )

    # Meta Marketing API
    meta_graph_url: str = "https://graph.facebook.com"
    meta_api_version: str = "v25.0"
    meta_app_id: str = ""
    meta_app_secret: SecretStr = SecretStr("")
    meta_access_token: SecretStr = SecretStr("")
    meta_ad_account_id: str = ""  # digits, without act_

    # YouTube Data + Analytics (OAuth refresh-token flow)
    youtube_root_url: str = "https://www.googleapis.com/"
    youtube_analytics_root_url: str = "https://youtubeanalytics.googleapis.com/"
    google_token_uri: str = "https://oauth2.googleapis.com/token"
    youtube_client_id: str = ""
    youtube_client_secret: SecretStr = SecretStr("")
    youtube_refresh_token: SecretStr = SecretStr("")

    # TikTok Content Posting API
    tiktok_base_url: str = "https://open.tiktokapis.com"
    tiktok_client_key: str = ""
    tiktok_client_secret: SecretStr = SecretStr("")
    tiktok_access_token: SecretStr = SecretStr("")
    tiktok_refresh_token: SecretStr = SecretStr("")

    # Instagram Graph API (Facebook login) and its resumable upload host
    instagram_graph_url: str = "https://graph.facebook.com"
    instagram_upload_url: str = "https://rupload.facebook.com"
    instagram_user_id: str = ""
    instagram_access_token: SecretStr = SecretStr("")

    # X API v2 (OAuth 2.0 user context)
    x_base_url: str = "https://api.x.com"
    x_client_id: str = ""
    x_client_secret: SecretStr = SecretStr("")
    x_access_token: SecretStr = SecretStr("")
    x_refresh_token: SecretStr = SecretStr("")

    # Polling of asynchronous platform jobs (TikTok publish, Instagram containers, X media, YouTube processing)
    poll_interval_s: float = Field(default=3.0, gt=0)
    poll_timeout_s: float = Field(default=600.0, gt=0)

    # Budget guardrails
    max_step_fraction: float = Field(default=0.2, gt=0, le=1)
    approval_threshold_fraction: float = Field(default=0.2, gt=0, le=1)
    approval_timeout_s: int = Field(default=3600, ge=1)
    min_platform_budget: float = Field(default=1.0, ge=0)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'metacentric.db'}"

    def missing_live_credentials(self) -> list[str]:
        """Names (as environment variables) of what live mode needs and does not have."""
        required = {
            "meta_app_id": self.meta_app_id,
            "meta_app_secret": self.meta_app_secret.get_secret_value(),
            "meta_access_token": self.meta_access_token.get_secret_value(),
            "meta_ad_account_id": self.meta_ad_account_id,
            "youtube_client_id": self.youtube_client_id,
            "youtube_client_secret": self.youtube_client_secret.get_secret_value(),
            "youtube_refresh_token": self.youtube_refresh_token.get_secret_value(),
            "tiktok_client_key": self.tiktok_client_key,
            "tiktok_client_secret": self.tiktok_client_secret.get_secret_value(),
            "tiktok_refresh_token": self.tiktok_refresh_token.get_secret_value(),
            "instagram_user_id": self.instagram_user_id,
            "instagram_access_token": self.instagram_access_token.get_secret_value(),
            "x_client_id": self.x_client_id,
            "x_refresh_token": self.x_refresh_token.get_secret_value(),
            "api_token": self.api_token.get_secret_value(),
        }
        missing = [f"METACENTRIC_{k.upper()}" for k, v in required.items() if not v]
        if not self.meta_webhook_app_secret.get_secret_value():
            missing.append("META_WEBHOOK_APP_SECRET")
        if not self.meta_webhook_verify_token.get_secret_value():
            missing.append("META_WEBHOOK_VERIFY_TOKEN")
        return missing

    def check_live(self) -> None:
        if self.mode == "live":
            missing = self.missing_live_credentials()
            if missing:
                raise LiveModeMisconfigured(missing)

    def for_sandbox(self, sandbox_url: str) -> Settings:
        """These settings with every platform pointed at the sandbox and its fake credentials set.

        Credentials the user set explicitly are kept; only empty ones get the sandbox's.
        """
        base = sandbox_url.rstrip("/")
        token = SecretStr(SANDBOX_TOKEN)
        secret = SecretStr(SANDBOX_APP_SECRET)

        def keep(value: SecretStr, fallback: SecretStr) -> SecretStr:
            return value if value.get_secret_value() else fallback

        return self.model_copy(
            update={
                "sandbox_url": base,
                # The sandbox's async jobs finish in about a second; poll it briskly.
                "poll_interval_s": min(self.poll_interval_s, 0.1),
                "poll_timeout_s": min(self.poll_timeout_s, 30.0),
                "meta_graph_url": base + SANDBOX_PREFIX["graph"],
                "meta_app_id": self.meta_app_id or "1000000000000001",
                "meta_app_secret": keep(self.meta_app_secret, secret),
                "meta_access_token": keep(self.meta_access_token, token),
                "meta_ad_account_id": self.meta_ad_account_id or "1000000000000002",
                "meta_webhook_app_secret": keep(self.meta_webhook_app_secret, secret),
                "meta_webhook_verify_token": keep(self.meta_webhook_verify_token, SecretStr("sandbox-verify")),
                "api_token": keep(self.api_token, SecretStr("sandbox-api-token")),
                "youtube_root_url": base + SANDBOX_PREFIX["youtube"],
                "youtube_analytics_root_url": base + SANDBOX_PREFIX["youtube_analytics"],
                "google_token_uri": base + SANDBOX_PREFIX["google_token"],
                "youtube_client_id": self.youtube_client_id or "sandbox-client",
                "youtube_client_secret": keep(self.youtube_client_secret, secret),
                "youtube_refresh_token": keep(self.youtube_refresh_token, SecretStr("sandbox-refresh")),
                "tiktok_base_url": base + SANDBOX_PREFIX["tiktok"],
                "tiktok_client_key": self.tiktok_client_key or "sandbox-client",
                "tiktok_client_secret": keep(self.tiktok_client_secret, secret),
                "tiktok_access_token": keep(self.tiktok_access_token, token),
                "tiktok_refresh_token": keep(self.tiktok_refresh_token, SecretStr("sandbox-refresh")),
                "instagram_graph_url": base + SANDBOX_PREFIX["graph"],
                "instagram_upload_url": base + SANDBOX_PREFIX["rupload"],
                "instagram_user_id": self.instagram_user_id or "17841400000000001",
                "instagram_access_token": keep(self.instagram_access_token, token),
                "x_base_url": base + SANDBOX_PREFIX["x"],
                "x_client_id": self.x_client_id or "sandbox-client",
                "x_client_secret": keep(self.x_client_secret, secret),
                "x_access_token": keep(self.x_access_token, token),
                "x_refresh_token": keep(self.x_refresh_token, SecretStr("sandbox-refresh")),
            }
        )


class LiveModeMisconfigured(RuntimeError):
    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(
            "live mode needs these settings, which are not set: "
            + ", ".join(missing)
            + ". Set them in the environment or .env, or use METACENTRIC_MODE=sandbox."
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
