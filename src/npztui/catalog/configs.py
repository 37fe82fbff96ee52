"""Circuit configurations, working sessions and the user profile (defaults for new computations)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import validate as v
from .base import CatalogBase
from .errors import ValidationError
from .models import CircuitConfig, UserProfile, UserSession
from .schema import CIRCUIT_CONFIGURATIONS, USER_PROFILES, USER_SESSIONS
from .util import CLOCK

_UNSET: Any = object()

CONFIG_FIELDS = (
    "name", "description", "circuit_parameters", "grid_size", "min_freq", "max_freq", "num_points", "is_public",
)
PROFILE_FIELDS = (
    "display_name", "default_grid_size", "default_min_freq", "default_max_freq", "default_num_points", "settings",
)


class ConfigsMixin(CatalogBase):
    """Configuration, session and profile methods of `Catalog`."""

    def _config_fields(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        bad = set(changes) - set(CONFIG_FIELDS)
        if bad:
            raise ValidationError(f"unknown configuration fields: {', '.join(sorted(bad))}")
        out = dict(changes)
        if "name" in out:
            out["name"] = v.text(out["name"], "name")
        if "circuit_parameters" in out:
            out["circuit_parameters"] = dict(v.json_object(out["circuit_parameters"], "circuit_parameters"))
        if "grid_size" in out:
            out["grid_size"] = v.integer(out["grid_size"], "grid_size", minimum=1, required=True)
        if "num_points" in out:
            out["num_points"] = v.integer(out["num_points"], "num_points", minimum=1, required=True)
        if "is_public" in out:
            out["is_public"] = bool(out["is_public"])
        return out

    def add_config(self, name: str, circuit_parameters: Mapping[str, Any] | None = None, *,
                   grid_size: int | None = None, min_freq: float | None = None, max_freq: float | None = None,
                   num_points: int | None = None, description: str | None = None,
                   is_public: bool = False) -> str:
        """Save a circuit configuration; unspecified grid/frequency values come from my profile."""
        prof = self.get_profile()
        fields = self._config_fields({
            "name": name, "description": description,
            "circuit_parameters": dict(circuit_parameters or {}),
            "grid_size": prof.default_grid_size if grid_size is None else grid_size,
            "num_points": prof.default_num_points if num_points is None else num_points,
            "is_public": is_public,
        })
        fields["min_freq"], fields["max_freq"] = v.freq_range(
            prof.default_min_freq if min_freq is None else min_freq,
            prof.default_max_freq if max_freq is None else max_freq,
        )
        with self.store.write():
            saved = self._save(CIRCUIT_CONFIGURATIONS, fields, existing=None)
        return saved["id"]

    def update_config(self, config_id: str, **changes: Any) -> CircuitConfig:
        fields = self._config_fields(changes)
        with self.store.write():
            old = self._mine(CIRCUIT_CONFIGURATIONS, config_id, what="circuit configuration")
            new = dict(old, **fields)
            new["min_freq"], new["max_freq"] = v.freq_range(new["min_freq"], new["max_freq"])
            if any(new[c] != old[c] for c in CIRCUIT_CONFIGURATIONS.content_columns):
                self._save(CIRCUIT_CONFIGURATIONS, new, existing=old)
        got = self.get_config(config_id)
        assert got is not None
        return got

    def delete_config(self, config_id: str) -> None:
        with self.store.write():
            old = self._mine(CIRCUIT_CONFIGURATIONS, config_id, what="circuit configuration", allow_deleted=True)
            if not old["deleted"]:
                self._save(CIRCUIT_CONFIGURATIONS, dict(old, deleted=True), existing=old)

    def get_config(self, config_id: str) -> CircuitConfig | None:
        row = self.store.get(CIRCUIT_CONFIGURATIONS, config_id)
        return CircuitConfig.from_row(row) if row and not row["deleted"] else None

    def list_configs(self, *, owner: str | None = None, public_only: bool = False) -> list[CircuitConfig]:
        """Live configurations: mine and the public ones of others (by name)."""
        where, params = ["deleted = 0"], []
        if owner is not None:
            where.append("owner = ?")
            params.append(owner)
        if public_only:
            where.append("is_public = 1")
        rows = self.store.select(CIRCUIT_CONFIGURATIONS, " AND ".join(where), params, suffix="ORDER BY name, id")
        return [CircuitConfig.from_row(r) for r in rows]

    # ------------------------------------------------------------------ sessions

    def create_session(self, session_name: str, *, current_circuit_config_id: str | None = None,
                       settings: Mapping[str, Any] | None = None) -> str:
        v.text(session_name, "session_name")
        with self.store.write():
            self._live(CIRCUIT_CONFIGURATIONS, current_circuit_config_id, what="circuit configuration")
            saved = self._save(USER_SESSIONS, {
                "session_name": session_name, "current_circuit_config_id": current_circuit_config_id,
                "settings": dict(v.json_object(settings, "settings")), "total_computations": 0,
                "total_models_generated": 0, "total_tagged": 0, "last_active": CLOCK.now(),
            }, existing=None)
        return saved["id"]

    def touch_session(self, session_id: str, *, computations: int = 0, models_generated: int = 0,
                      tagged: int = 0, settings: Mapping[str, Any] | None = None,
                      current_circuit_config_id: Any = _UNSET) -> UserSession:
        """Mark a session active now, adding to its running totals (and merging settings)."""
        for name, n in (("computations", computations), ("models_generated", models_generated),
                        ("tagged", tagged)):
            v.integer(n, name, minimum=0)
        with self.store.write():
            old = self._mine(USER_SESSIONS, session_id, what="session")
            new = dict(old)
            new["total_computations"] += computations
            new["total_models_generated"] += models_generated
            new["total_tagged"] += tagged
            if settings:
                new["settings"] = {**old["settings"], **v.json_object(settings, "settings")}
            if current_circuit_config_id is not _UNSET:
                self._live(CIRCUIT_CONFIGURATIONS, current_circuit_config_id, what="circuit configuration")
                new["current_circuit_config_id"] = current_circuit_config_id
            new["last_active"] = CLOCK.now()
            self._save(USER_SESSIONS, new, existing=old)
        got = self.get_session(session_id)
        assert got is not None
        return got

    def get_session(self, session_id: str) -> UserSession | None:
        row = self.store.get(USER_SESSIONS, session_id)
        return UserSession.from_row(row) if row and not row["deleted"] else None

    def list_sessions(self) -> list[UserSession]:
        """My live sessions, most recently active first."""
        rows = self.store.select(USER_SESSIONS, "owner = ? AND deleted = 0", (self.owner,),
                                 suffix="ORDER BY last_active DESC, created_at DESC")
        return [UserSession.from_row(r) for r in rows]

    def delete_session(self, session_id: str) -> None:
        with self.store.write():
            old = self._mine(USER_SESSIONS, session_id, what="session", allow_deleted=True)
            if not old["deleted"]:
                self._save(USER_SESSIONS, dict(old, deleted=True), existing=old)

    # ------------------------------------------------------------------ profile

    def get_profile(self) -> UserProfile:
        """My profile; the defaults (unsaved, id None) until `update_profile` is called."""
        rows = self.store.select(USER_PROFILES, "owner = ? AND deleted = 0", (self.owner,))
        return UserProfile.from_row(rows[0]) if rows else UserProfile(owner=self.owner)

    def update_profile(self, **changes: Any) -> UserProfile:
        bad = set(changes) - set(PROFILE_FIELDS)
        if bad:
            raise ValidationError(f"unknown profile fields: {', '.join(sorted(bad))}")
        with self.store.write():
            found = self.store.select(USER_PROFILES, "owner = ?", (self.owner,))
            old = found[0] if found else None
            new = dict(old) if old else {k: getattr(UserProfile(), k) for k in PROFILE_FIELDS}
            new.update(changes)
            new["default_grid_size"] = v.integer(new["default_grid_size"], "default_grid_size", minimum=1,
                                                 required=True)
            new["default_num_points"] = v.integer(new["default_num_points"], "default_num_points", minimum=1,
                                                  required=True)
            new["default_min_freq"], new["default_max_freq"] = v.freq_range(
                new["default_min_freq"], new["default_max_freq"], prefix="default_")
            new["settings"] = dict(v.json_object(new["settings"], "settings"))
            new["deleted"] = False
            if old is None or any(new[c] != old[c] for c in USER_PROFILES.content_columns):
                self._save(USER_PROFILES, new, existing=old)
        return self.get_profile()
