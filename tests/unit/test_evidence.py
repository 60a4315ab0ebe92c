"""The consent-evidence chain under attack: a rewrite sealed again without the key (plain
SHA-256, or HMAC with a wrong key), a tail cut off (caught by a signed checkpoint), a forged
checkpoint; key rotation; records from before keys; the table refusing UPDATE and DELETE."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from auth_flow import evidence
from auth_flow.__main__ import main
from auth_flow.evidence import LEGACY, Client, Keys
from auth_flow.tokens import issue
from lending.customers import by_openid
from sunshine.db import engine_for, unit_of_work
from sunshine.demo import load_demo
from sunshine.migrate import alembic_config
from sunshine.models import Authorization
from sunshine.settings import load
from tests.conftest import TEST_SECRET, fresh_database

CLIENT = Client("203.0.113.5", "pytest")
K1, K2 = "k1:first-secret-0123456789", "k2:second-secret-0123456789"


@pytest.fixture
def keys_env(monkeypatch):
    """Set EVIDENCE_KEYS / EVIDENCE_KEY_ID as an operator would (append reads the settings)."""

    def use(keys: str, current: str) -> Keys:
        monkeypatch.setenv("EVIDENCE_KEYS", keys)
        monkeypatch.setenv("EVIDENCE_KEY_ID", current)
        return evidence.configured_keys()

    return use


def append(url, n: int, event: str = "opened") -> None:
    with unit_of_work(url) as s:
        customer = by_openid(s, "o_demo_zhangjianguo")
        auth = (
            s.scalar(select(Authorization))
            or issue(s, customer, customer, "applicant", "bot", timedelta(1)).authorization
        )
        for i in range(n):
            evidence.append(s, auth, event, CLIENT, step=i)


def exported(url) -> list[dict]:
    with unit_of_work(url) as s:
        return list(evidence.export(s))


def resealed(records: list[dict], from_index: int, seal) -> list[dict]:
    """The attacker's rewrite: records from `from_index` on sealed again with `seal(prev, content, rec)`."""
    out = [dict(r) for r in records]
    for i in range(from_index, len(out)):
        out[i]["prev_hash"] = out[i - 1]["record_hash"] if i else evidence.GENESIS
        content = {name: out[i][name] for name in evidence.FIELDS}
        out[i]["record_hash"] = seal(out[i]["prev_hash"], content, out[i])
    return out


def test_a_keyed_chain_verifies_and_each_record_names_its_key(demo_settings, keys_env):
    keys = keys_env(K1, "k1")
    append(demo_settings.database_url, 3)
    records = exported(demo_settings.database_url)
    assert [r["key_id"] for r in records] == ["k1"] * 3
    assert evidence.verify_chain(records, keys) == []
    assert evidence.verify_chain(iter(records)) == []  # a generator, keys from the settings


def test_a_rewritten_chain_sealed_again_without_the_key_fails(demo_settings, keys_env):
    keys = keys_env(K1, "k1")
    append(demo_settings.database_url, 4)
    records = exported(demo_settings.database_url)
    records[1]["client_ip"] = "1.2.3.4"  # the attacker's change, then every later record sealed again

    def sha256(prev, content, rec):  # the old scheme's hash, the key id left as it was
        return evidence.seal(prev, content, LEGACY, keys)

    wrong = Keys({"k1": b"a-guessed-key-0123456789"}, "k1")

    def wrong_key(prev, content, rec):
        return evidence.seal(prev, content, "k1", wrong)

    for seal in (sha256, wrong_key):
        problems = evidence.verify_chain(resealed(records, 1, seal), keys)
        assert problems == [f"record {r['id']}: content does not match its hash" for r in records[1:]], seal
    # with the real key the same rewrite would pass: the key is what protects the chain
    assert evidence.verify_chain(resealed(records, 1, lambda p, c, r: evidence.seal(p, c, "k1", keys)), keys) == []


def test_relabelling_records_as_unkeyed_legacy_ones_is_caught(demo_settings, keys_env, tmp_path):
    keys = keys_env(K1, "k1")
    append(demo_settings.database_url, 4)
    records = exported(demo_settings.database_url)

    def as_legacy(prev, content, rec):
        rec["key_id"] = LEGACY
        return evidence.seal(prev, content, LEGACY, keys)

    tail = resealed(records, 2, as_legacy)  # keyed records followed by "legacy" ones
    assert evidence.verify_chain(tail, keys) == [
        f"record {r['id']}: unkeyed ({LEGACY}) after keyed records" for r in records[2:]
    ]
    # the whole chain relabelled is a valid legacy chain by itself; the checkpoint says there was no legacy record
    point = checkpoint(demo_settings.database_url, keys)
    whole = resealed(records, 0, as_legacy)
    problems = evidence.verify_chain(whole, keys, [point])
    assert (
        f"record {records[0]['id']}: unkeyed ({LEGACY}) beyond the 0 legacy records a checkpoint recorded" in problems
    )
    assert any("record 4 of the chain is not the head it signed" in p for p in problems)


def checkpoint(url, keys: Keys) -> dict:
    with unit_of_work(url) as s:
        return evidence.checkpoint(s, keys)


def test_a_chain_cut_at_its_tail_is_caught_by_a_checkpoint(demo_settings, keys_env):
    url = demo_settings.database_url
    keys = keys_env(K1, "k1")
    append(url, 5)
    point = checkpoint(url, keys)
    records = exported(url)
    assert point["count"] == 5 and point["head"] == records[-1]["record_hash"] and point["head_id"] == records[-1]["id"]
    assert evidence.verify_chain(records[:3], keys) == []  # alone, a shorter chain is a valid chain
    assert evidence.verify_chain(records[:3], keys, [point]) == [
        f"checkpoint of {point['at']}: it counted 5 records at {point['at']}, the chain has 3: 2 cut from its tail"
    ]
    # cut, then the application appends again past the checkpoint's count: the head it signed is gone
    regrown = resealed(
        records[:3] + [dict(records[3], event="other"), dict(records[4])],
        3,
        lambda p, c, r: evidence.seal(p, c, "k1", keys),
    )
    assert evidence.verify_chain(regrown, keys, [point]) == [
        f"checkpoint of {point['at']}: record 5 of the chain is not the head it signed (the chain was rewritten)"
    ]
    append(url, 2)  # growing past a checkpoint is what a chain does
    assert evidence.verify_chain(exported(url), keys, [point]) == []


def test_a_forged_or_altered_checkpoint_is_refused(demo_settings, keys_env):
    keys = keys_env(K1, "k1")
    append(demo_settings.database_url, 3)
    point = checkpoint(demo_settings.database_url, keys)
    lowered = dict(point, count=2, head=exported(demo_settings.database_url)[1]["record_hash"], file="cp.json")
    assert evidence.verify_chain(exported(demo_settings.database_url), keys, [lowered]) == [
        "checkpoint cp.json: its signature does not verify (forged or altered)"
    ]
    other = Keys({"k9": b"someone-elses-key-0123"}, "k9")
    foreign = dict(checkpoint(demo_settings.database_url, other), file="x.json")
    assert evidence.verify_chain([], keys, [foreign]) == [
        "checkpoint x.json: signed with key 'k9', which EVIDENCE_KEYS does not hold"
    ]


def test_after_rotating_keys_records_and_checkpoints_under_the_old_key_still_verify(demo_settings, keys_env):
    url = demo_settings.database_url
    old = keys_env(K1, "k1")
    append(url, 2)
    point = checkpoint(url, old)
    new = keys_env(f"{K1},{K2}", "k2")  # rotation: k2 seals from now on, k1 stays to verify
    append(url, 2)
    records = exported(url)
    assert [r["key_id"] for r in records] == ["k1", "k1", "k2", "k2"]
    assert evidence.verify_chain(records, new, [point, checkpoint(url, new)]) == []
    # a keyring without k1 can no longer vouch for the old records (nor accept them)
    retired = Keys({"k2": new.secrets["k2"]}, "k2")
    assert evidence.verify_chain(records, retired)[:2] == [
        f"record {r['id']}: sealed with key 'k1', which EVIDENCE_KEYS does not hold" for r in records[:2]
    ]


def legacy_hash(prev: str, content: dict) -> str:
    """The chain's hash before keys (plain SHA-256), written out here as the old code did."""
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev + canonical).encode()).hexdigest()


def test_records_from_before_keys_verify_after_the_migration_and_only_at_the_start(tmp_path, keys_env):
    keys = keys_env(K1, "k1")
    before_keys = sa.table(
        "consent_evidence",
        *(sa.column(n, sa.JSON if n in ("face", "image_sha256", "detail") else None) for n in evidence.FIELDS),
        sa.column("prev_hash"),
        sa.column("record_hash"),
    )
    with fresh_database(tmp_path) as url:
        cfg = alembic_config(url)
        command.upgrade(cfg, "head")
        with unit_of_work(url) as s:
            load_demo(s, TEST_SECRET)
            customer = by_openid(s, "o_demo_zhangjianguo")
            auth_id = issue(s, customer, customer, "applicant", "bot", timedelta(1)).authorization.id
        engine_for(url).dispose()
        keyed = next(r for r in ScriptDirectory.from_config(cfg).walk_revisions() if "evidence_keys" in r.path)
        command.downgrade(cfg, keyed.down_revision)  # the schema before keys (other tables' rows stay)
        with unit_of_work(url) as s:  # rows as the version before keys wrote them
            prev = evidence.GENESIS
            for event in ("identity_checked", "biometric_consent"):
                row = dict.fromkeys(("consent_text", "client_ip", "user_agent"), "")
                row.update(face={}, image_sha256=[], detail={}, event=event, at=datetime(2026, 11, 30, 8, 0))
                row.update(authorization_id=auth_id, party_role="applicant", party_name="张建国", party_id_masked="x")
                content = {**row, "at": row["at"].isoformat()}
                row.update(prev_hash=prev, record_hash=legacy_hash(prev, content))
                s.execute(sa.insert(before_keys).values(**row))
                prev = row["record_hash"]
        engine_for(url).dispose()
        command.upgrade(cfg, "head")
        records = exported(url)
        assert [r["key_id"] for r in records] == [LEGACY, LEGACY]
        assert evidence.verify_chain(records, keys) == []
        append(url, 2)  # the first keyed record seals the legacy head into its HMAC
        point = checkpoint(url, keys)
        records = exported(url)
        assert point["legacy_records"] == 2 and [r["key_id"] for r in records] == [LEGACY, LEGACY, "k1", "k1"]
        assert evidence.verify_chain(records, keys, [point]) == []
        records[0]["detail"] = {"forged": True}  # a legacy record changed, the legacy part rehashed
        changed = resealed(records[:2], 0, lambda p, c, r: legacy_hash(p, c)) + records[2:]
        assert evidence.verify_chain(changed, keys) == [
            f"record {records[2]['id']}: does not follow the record before it"
        ]
        engine_for(url).dispose()


def test_the_evidence_table_refuses_update_and_delete(demo_settings, keys_env):
    """On SQLite and, with DATABASE_URL=postgresql://..., PostgreSQL (where TRUNCATE too)."""
    url = demo_settings.database_url
    keys_env(K1, "k1")
    append(url, 2)
    statements = [
        "UPDATE consent_evidence SET client_ip = '1.2.3.4'",
        "DELETE FROM consent_evidence WHERE id = (SELECT max(id) FROM consent_evidence)",
    ]
    if url.startswith("postgresql"):
        statements.append("TRUNCATE consent_evidence CASCADE")
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"):
            with unit_of_work(url) as s:
                s.execute(text(statement))
    assert evidence.verify_chain(exported(url)) == [] and len(exported(url)) == 2
    append(url, 1)  # appending still works
    assert len(exported(url)) == 3


def test_checkpoint_and_verify_commands(demo_settings, keys_env, monkeypatch, tmp_path, capsys):
    url = demo_settings.database_url
    keys_env(K1, "k1")
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("EVIDENCE_CHECKPOINT_DIR", str(tmp_path / "points"))
    assert main(["verify-evidence"]) == 1
    assert "no checkpoint" in capsys.readouterr().out
    append(url, 3)
    assert main(["evidence-checkpoint"]) == 0
    line = capsys.readouterr().out
    assert line.startswith("evidence checkpoint ") and '"count": 3' in line
    (written,) = (tmp_path / "points").glob("*.json")
    assert json.loads(written.read_text())["count"] == 3
    assert main(["verify-evidence"]) == 0
    assert "3 evidence records intact; 1 checkpoint(s) hold" in capsys.readouterr().out
    export = tmp_path / "chain.jsonl"
    assert main(["export-evidence", str(export)]) == 0
    lines = export.read_text(encoding="utf-8").splitlines()
    export.write_text("\n".join(lines[:2]) + "\n", encoding="utf-8")  # the tail cut off the auditor's copy
    assert main(["verify-evidence", "--from", str(export)]) == 1
    assert f"checkpoint {written.name}" in capsys.readouterr().out
    assert load().evidence_checkpoint_dir == str(tmp_path / "points")
    assert main(["evidence-checkpoint"]) == main(["evidence-checkpoint"]) == 0  # within a second: no overwrite
    assert len(list((tmp_path / "points").glob("*.json"))) == 3
    (tmp_path / "points" / "junk.json").write_text('{"count": "3"}')
    capsys.readouterr()
    assert main(["verify-evidence"]) == 1
    assert "checkpoint junk.json: unreadable (not a checkpoint)" in capsys.readouterr().out
