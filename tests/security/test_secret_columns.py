"""Issue 14 item 3: values of secret columns are never sampled, written, prompted or embedded."""
from __future__ import annotations

import json

import pytest

from config import Settings
from data_pipeline.qa.column_roles import roles_by_table, table_roles
from data_pipeline.qa.documents import load_table_documents
from data_pipeline.qa.templates import table_candidates
from data_pipeline.schema.names import parse_table_name
from data_pipeline.schema.secret_columns import ColumnMask
from data_pipeline.schema.tools import table_document
from data_pipeline.steps import ddl_generation
from data_pipeline.steps.context import StepContext
from data_pipeline.vector.documents import collect
from tests.conftest import DatabaseFactory

SECRETS = ("PW-7f3a9c", "TOKEN-b81d", "SALT-55e0", "KEY-c0ffee", "CRED-9911", "13800138000", "DEADBEEF")
USERS_SQL = """
create table app_user (
  id serial primary key, login text not null, status text,
  password_hash text, "apiToken" text, salt varchar(16), avatar bytea,
  mobile_phone text, db_credential text, service_api_key text);
insert into app_user (login, status, password_hash, "apiToken", salt, avatar, mobile_phone, db_credential,
                      service_api_key)
  select 'user' || i, (array['active', 'locked'])[1 + i % 2], 'PW-7f3a9c' || i, 'TOKEN-b81d' || i,
         'SALT-55e0', '\\xdeadbeef'::bytea, '13800138000', 'CRED-9911', 'KEY-c0ffee'
    from generate_series(1, 40) i;
"""


@pytest.fixture(scope="module")
def users_db(local_pg_admin_url):
    factory = DatabaseFactory(local_pg_admin_url, "dp_test_secrets")
    yield factory(USERS_SQL)
    factory.drop_all()


def _assert_no_secret(text: str) -> None:
    found = [secret for secret in SECRETS if secret.lower() in text.lower()]
    assert not found, f"secret values {found} in output"


def test_ddl_generation_never_samples_secret_columns(users_db, tmp_path):
    settings = Settings().with_overrides(mask_columns=("phone",))
    ctx = StepContext(task_id="task_test", task_dir=tmp_path, settings=settings, db_url=users_db,
                      db_name="users", business_context="用户系统", tables=[parse_table_name("app_user")], params={})

    ddl_generation.run(ctx)

    md = (tmp_path / "app_user_detail.md").read_text(encoding="utf-8")
    assert "[示例: user" in md and "active" in md  # ordinary columns are still sampled
    for path in tmp_path.rglob("*"):
        if path.is_file():
            _assert_no_secret(path.read_text(encoding="utf-8", errors="replace"))
    assert "password_hash" in md and "mobile_phone" in md  # the columns are documented, without values


def test_database_tool_withholds_secret_values(users_db):
    data = table_document(users_db, "public.app_user", "both", mask=ColumnMask(("phone",)))

    _assert_no_secret(json.dumps(data, ensure_ascii=False))
    fields = {field["column_name"]: field for field in data["fields"]}
    assert fields["password_hash"]["sample_values"] == [] and fields["avatar"]["sample_values"] == []
    assert fields["login"]["sample_values"]


def test_mask_patterns_come_from_the_environment():
    settings = Settings.from_env({"DATA_PIPELINE_MASK_COLUMNS": "phone, ID_card ,email"}, dotenv_path=None)
    assert settings.mask_columns == ("phone", "ID_card", "email")
    mask = ColumnMask.from_settings(settings)
    assert mask.hides("Customer_ID_CARD") and mask.hides("contact_email") and mask.hides("user_pwd")
    assert mask.hides("payload", "bytea") and not mask.hides("login", "text")


UPLOADED_MD = """## app_user（用户）
app_user 表用户账号
字段列表：
- id (integer) - 主键 [主键, 非空] [示例: 1, 2]
- password_hash (text) - 密码摘要 [示例: PW-7f3a9c1, PW-7f3a9c2]
- avatar (bytea) - 头像 [示例: DEADBEEF]
- status (text) - 状态 [示例: active, locked]
字段补充说明：
- salt 为枚举字段，包含取值：SALT-55e0、KEY-c0ffee
- status 为枚举字段，包含取值：active、locked
"""


def test_uploaded_documents_lose_secret_values_before_prompts_and_vectors(tmp_path):
    (tmp_path / "app_user_detail.md").write_text(UPLOADED_MD, encoding="utf-8")
    (tmp_path / "app_user.ddl").write_text(
        "create table app_user (\n  id integer primary key,\n  password_hash text,\n  avatar bytea,\n"
        "  salt text,\n  status text\n);\n", encoding="utf-8")

    [doc], _ = load_table_documents(tmp_path, [parse_table_name("app_user")])
    columns = {column.name: column for column in doc.columns}
    assert columns["password_hash"].samples == [] and columns["salt"].enum_values == []
    assert columns["status"].samples == ["active", "locked"]
    _assert_no_secret(doc.md_text)    # what the LLM's pair prompt quotes
    assert "status (text) - 状态 [示例: active, locked]" in doc.md_text

    documents = collect(tmp_path, "task_20250101_000000", "hash")
    [documentation] = [d for d in documents.documents if d.collection == "documentation"]
    _assert_no_secret(documentation.text)
    assert "password_hash (text) - 密码摘要" in documentation.text and "包含取值：active、locked" in documentation.text


def test_columns_of_the_configured_mask_are_never_grouped_by(tmp_path):
    """A table with no name column groups by a short text column; never by one the operator masked."""
    (tmp_path / "app_order.ddl").write_text(
        "create table public.app_order (\n  id integer primary key,\n  contact_phone varchar(20),\n"
        "  amount numeric(10,2),\n  order_date date\n);\n", encoding="utf-8")
    tables = [parse_table_name("app_order")]
    [plain], _ = load_table_documents(tmp_path, tables)
    assert [c.name for c in table_roles(plain).codes] == ["contact_phone"]   # the fallback, unmasked
    [masked], _ = load_table_documents(tmp_path, tables, ColumnMask(("phone",)))
    assert not any("contact_phone" in c.sql for c in table_candidates(masked, {masked.key: masked},
                                                                       roles_by_table([masked])))
