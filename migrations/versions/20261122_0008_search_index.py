"""Search index: documents for relations, contacts, projects, leads and conversations, kept by triggers

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 19:00:00

Each searchable record has one row in search_documents with the folded words of its own fields and
of its linked records (a contact's relation and that relation's projects, say). Statement-level
triggers with transition tables refresh the rows a statement touched in one set-based pass, so a
COPY or a bulk INSERT of a million rows costs a few statements, not a million trigger calls.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Legal forms, as crm.normalizers.company strips them (on folded words).
LEGAL = (
    r"b v|n v|v o f|c v|bv|nv|vof|cv|i o|io|u a|stichting|holding|vereniging|cooperatie|"
    r"cooperatieve|maatschap|gmbh|ag|ltd|limited|inc|llc|plc|bvba|cvba"
)

# The tail of every refresh: a document is replaced whole.
UPSERT = """ON CONFLICT (kind, record_id) DO UPDATE SET title = excluded.title,
    subtitle = excluded.subtitle, fields = excluded.fields, doc = excluded.doc,
    names = excluded.names, relation_id = excluded.relation_id,
    external_id = excluded.external_id, confidential = excluded.confidential;"""

FUNCTIONS = rf"""
-- Folded words: lowercase ASCII letters and digits separated by single spaces.
CREATE FUNCTION sb_words(value text) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT btrim(regexp_replace(lower(unaccent(coalesce(value, ''))), '[^a-z0-9]+', ' ', 'g'))
$$;

-- A company name's words without its legal form ('hamerslag b v' -> 'hamerslag').
CREATE FUNCTION sb_company(value text) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT btrim(regexp_replace(regexp_replace(' ' || sb_words(value) || ' ',
    ' ({LEGAL})(?= )', ' ', 'g'), ' +', ' ', 'g'))
$$;

CREATE FUNCTION sb_vector(a text, b text, c text) RETURNS tsvector LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT setweight(to_tsvector('simple', sb_words(a)), 'A')
      || setweight(to_tsvector('simple', sb_words(b)), 'B')
      || setweight(to_tsvector('simple', sb_words(c)), 'C')
$$;

CREATE FUNCTION sb_remember_words(kinds text, ids bigint[]) RETURNS void LANGUAGE sql AS $$
  INSERT INTO search_words (word)
  SELECT DISTINCT w FROM unnest(ids) AS u(id)
  JOIN search_documents d ON d.kind = kinds AND d.record_id = u.id,
  unnest(tsvector_to_array(d.doc)) AS w
  WHERE length(w) BETWEEN 3 AND 40
    AND w ~ '^[a-z]+$'
    AND NOT EXISTS (SELECT 1 FROM search_words s WHERE s.word = w)
$$;

CREATE FUNCTION sb_refresh_contacts(ids bigint[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF ids IS NULL OR cardinality(ids) = 0 THEN RETURN; END IF;
  DELETE FROM search_documents d USING unnest(ids) AS u(id)
    WHERE d.kind = 'contact' AND d.record_id = u.id
    AND NOT EXISTS (SELECT 1 FROM contacts c WHERE c.id = d.record_id);
  INSERT INTO search_documents AS d
    (kind, record_id, title, subtitle, fields, doc, names, relation_id, external_id, confidential)
  SELECT 'contact', c.id, left(c.full_name, 500), left(coalesce(r.name, ''), 500),
    jsonb_strip_nulls(jsonb_build_object(
      'name', c.full_name, 'city', c.city, 'job', c.job_title, 'email', em.emails,
      'relation', r.name, 'relation.city', r.addresses -> 0 ->> 'city',
      'project', nullif(concat_ws(' ', pr.names, pr.cities), ''))),
    sb_vector(concat_ws(' ', c.full_name, c.first_name, c.last_name),
              concat_ws(' ', r.name, sb_company(r.name)),
              concat_ws(' ', c.city, r.addresses -> 0 ->> 'city', em.emails, pr.names, pr.cities,
                        c.external_id)),
    sb_words(concat_ws(' ', c.full_name, sb_company(r.name))),
    c.relation_id, c.external_id, false
  FROM unnest(ids) AS u(id) JOIN contacts c ON c.id = u.id
  LEFT JOIN relations r ON r.id = c.relation_id
  LEFT JOIN LATERAL (
    SELECT string_agg(p.name, ' ') AS names, string_agg(p.city, ' ') AS cities
    FROM (SELECT name, city FROM projects WHERE relation_id = r.id AND NOT confidential
          ORDER BY id DESC LIMIT 20) p
  ) pr ON true
  LEFT JOIN LATERAL (
    SELECT string_agg(split_part(i.value, '@', 1), ' ') AS emails
    FROM identities i WHERE i.contact_id = c.id AND i.kind = 'email'
  ) em ON true
  {UPSERT}
  PERFORM sb_remember_words('contact', ids);
END $$;

CREATE FUNCTION sb_refresh_relations(ids bigint[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF ids IS NULL OR cardinality(ids) = 0 THEN RETURN; END IF;
  DELETE FROM search_documents d USING unnest(ids) AS u(id)
    WHERE d.kind = 'relation' AND d.record_id = u.id
    AND NOT EXISTS (SELECT 1 FROM relations r WHERE r.id = d.record_id);
  INSERT INTO search_documents AS d
    (kind, record_id, title, subtitle, fields, doc, names, relation_id, external_id, confidential)
  SELECT 'relation', r.id, left(r.name, 500), r.status,
    jsonb_strip_nulls(jsonb_build_object(
      'name', r.name, 'city', r.addresses -> 0 ->> 'city', 'kvk', r.kvk_number,
      'region', r.region, 'project', nullif(concat_ws(' ', pr.names, pr.cities), ''))),
    -- (Its contacts' names are not in it: each contact is found through its own document,
    -- which holds the relation's words; a relation's document stays small.)
    sb_vector(concat_ws(' ', r.name, sb_company(r.name)), NULL,
              concat_ws(' ', r.addresses -> 0 ->> 'city', r.kvk_number, r.region, pr.names,
                        pr.cities, r.external_id)),
    sb_company(r.name), r.id, r.external_id, false
  FROM unnest(ids) AS u(id) JOIN relations r ON r.id = u.id
  LEFT JOIN LATERAL (
    SELECT string_agg(p.name, ' ') AS names, string_agg(p.city, ' ') AS cities
    FROM (SELECT name, city FROM projects WHERE relation_id = r.id AND NOT confidential
          ORDER BY id DESC LIMIT 20) p
  ) pr ON true
  {UPSERT}
  PERFORM sb_remember_words('relation', ids);
END $$;

CREATE FUNCTION sb_refresh_projects(ids bigint[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF ids IS NULL OR cardinality(ids) = 0 THEN RETURN; END IF;
  DELETE FROM search_documents d USING unnest(ids) AS u(id)
    WHERE d.kind = 'project' AND d.record_id = u.id
    AND NOT EXISTS (SELECT 1 FROM projects p WHERE p.id = d.record_id);
  INSERT INTO search_documents AS d
    (kind, record_id, title, subtitle, fields, doc, names, relation_id, external_id, confidential)
  SELECT 'project', p.id, left(p.name, 500), left(coalesce(r.name, ''), 500),
    jsonb_strip_nulls(jsonb_build_object('name', p.name, 'city', p.city, 'relation', r.name,
                                         'status', p.status)),
    sb_vector(p.name, concat_ws(' ', p.city, r.name, sb_company(r.name)), p.status),
    sb_words(concat_ws(' ', p.name, p.city)), p.relation_id, NULL, p.confidential
  FROM unnest(ids) AS u(id) JOIN projects p ON p.id = u.id
  LEFT JOIN relations r ON r.id = p.relation_id
  {UPSERT}
  PERFORM sb_remember_words('project', ids);
END $$;

CREATE FUNCTION sb_refresh_leads(ids bigint[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF ids IS NULL OR cardinality(ids) = 0 THEN RETURN; END IF;
  DELETE FROM search_documents d USING unnest(ids) AS u(id)
    WHERE d.kind = 'lead' AND d.record_id = u.id
    AND NOT EXISTS (SELECT 1 FROM leads l WHERE l.id = d.record_id);
  INSERT INTO search_documents AS d
    (kind, record_id, title, subtitle, fields, doc, names, relation_id, external_id, confidential)
  SELECT 'lead', l.id, left(coalesce(l.name, l.company, '?'), 500), left(coalesce(l.company, ''), 500),
    jsonb_strip_nulls(jsonb_build_object('name', l.name, 'company', l.company,
                                         'city', l.fields ->> 'city', 'status', l.status)),
    sb_vector(l.name, concat_ws(' ', l.company, sb_company(l.company)),
              concat_ws(' ', l.fields ->> 'city', l.fields ->> 'project')),
    sb_words(concat_ws(' ', l.name, sb_company(l.company))), NULL, NULL, false
  FROM unnest(ids) AS u(id) JOIN leads l ON l.id = u.id
  {UPSERT}
  PERFORM sb_remember_words('lead', ids);
END $$;

CREATE FUNCTION sb_refresh_conversations(ids bigint[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF ids IS NULL OR cardinality(ids) = 0 THEN RETURN; END IF;
  DELETE FROM search_documents d USING unnest(ids) AS u(id)
    WHERE d.kind = 'conversation' AND d.record_id = u.id
    AND NOT EXISTS (SELECT 1 FROM conversations v WHERE v.id = d.record_id);
  INSERT INTO search_documents AS d
    (kind, record_id, title, subtitle, fields, doc, names, relation_id, external_id, confidential)
  SELECT 'conversation', v.id, left(coalesce(v.subject, ''), 500), v.status,
    jsonb_strip_nulls(jsonb_build_object('subject', v.subject, 'contact', c.full_name,
                                         'relation', r.name, 'lead', l.name)),
    sb_vector(v.subject, concat_ws(' ', c.full_name, l.name, r.name, sb_company(r.name)), NULL),
    sb_words(concat_ws(' ', c.full_name, l.name)), v.relation_id, NULL, v.confidential
  FROM unnest(ids) AS u(id) JOIN conversations v ON v.id = u.id
  LEFT JOIN contacts c ON c.id = v.contact_id
  LEFT JOIN relations r ON r.id = v.relation_id
  LEFT JOIN leads l ON l.id = v.lead_id
  {UPSERT}
  PERFORM sb_remember_words('conversation', ids);
END $$;

-- Trigger functions: one pass over the statement's transition tables.
CREATE FUNCTION sb_contacts_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE changed bigint[];
BEGIN
  -- A bulk import refreshes the documents itself, once per batch (crm/importer.py).
  IF current_setting('switchboard.bulk', true) = 'on' THEN RETURN NULL; END IF;
  IF TG_OP = 'DELETE' THEN
    DELETE FROM search_documents d USING old_rows o WHERE d.kind = 'contact' AND d.record_id = o.id;
    RETURN NULL;
  ELSIF TG_OP = 'INSERT' THEN
    SELECT array_agg(id) INTO changed FROM new_rows;
  ELSE
    SELECT array_agg(n.id) INTO changed FROM new_rows n JOIN old_rows o ON o.id = n.id
      WHERE (n.full_name, n.first_name, n.last_name, n.city, n.relation_id, n.external_id, n.job_title)
        IS DISTINCT FROM (o.full_name, o.first_name, o.last_name, o.city, o.relation_id, o.external_id, o.job_title);
  END IF;
  PERFORM sb_refresh_contacts(changed);
  RETURN NULL;
END $$;

CREATE FUNCTION sb_relations_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE changed bigint[];
BEGIN
  -- A bulk import refreshes the documents itself, once per batch (crm/importer.py).
  IF current_setting('switchboard.bulk', true) = 'on' THEN RETURN NULL; END IF;
  IF TG_OP = 'DELETE' THEN
    DELETE FROM search_documents d USING old_rows o WHERE d.kind = 'relation' AND d.record_id = o.id;
    RETURN NULL;
  ELSIF TG_OP = 'INSERT' THEN
    SELECT array_agg(id) INTO changed FROM new_rows;
    PERFORM sb_refresh_relations(changed);
    RETURN NULL;
  END IF;
  SELECT array_agg(n.id) INTO changed FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE (n.name, n.status, n.addresses, n.kvk_number, n.region, n.external_id)
      IS DISTINCT FROM (o.name, o.status, o.addresses, o.kvk_number, o.region, o.external_id);
  IF changed IS NULL THEN RETURN NULL; END IF;
  PERFORM sb_refresh_relations(changed);
  PERFORM sb_refresh_contacts(ARRAY(SELECT id FROM contacts WHERE relation_id = ANY(changed)));
  PERFORM sb_refresh_projects(ARRAY(SELECT id FROM projects WHERE relation_id = ANY(changed)));
  PERFORM sb_refresh_conversations(ARRAY(SELECT id FROM conversations WHERE relation_id = ANY(changed)));
  RETURN NULL;
END $$;

CREATE FUNCTION sb_projects_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE changed bigint[]; relations bigint[];
BEGIN
  -- A bulk import refreshes the documents itself, once per batch (crm/importer.py).
  IF current_setting('switchboard.bulk', true) = 'on' THEN RETURN NULL; END IF;
  IF TG_OP = 'DELETE' THEN
    DELETE FROM search_documents d USING old_rows o WHERE d.kind = 'project' AND d.record_id = o.id;
    SELECT array_agg(DISTINCT relation_id) INTO relations FROM old_rows WHERE relation_id IS NOT NULL;
  ELSE
    SELECT array_agg(id) INTO changed FROM new_rows;
    SELECT array_agg(DISTINCT relation_id) INTO relations FROM new_rows WHERE relation_id IS NOT NULL;
  END IF;
  PERFORM sb_refresh_projects(changed);
  PERFORM sb_refresh_relations(relations);
  PERFORM sb_refresh_contacts(ARRAY(SELECT id FROM contacts WHERE relation_id = ANY(relations)));
  RETURN NULL;
END $$;

CREATE FUNCTION sb_identities_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE changed bigint[];
BEGIN
  -- A bulk import refreshes the documents itself, once per batch (crm/importer.py).
  IF current_setting('switchboard.bulk', true) = 'on' THEN RETURN NULL; END IF;
  IF TG_OP = 'DELETE' THEN
    SELECT array_agg(DISTINCT contact_id) INTO changed FROM old_rows
      WHERE contact_id IS NOT NULL AND kind = 'email';
  ELSE
    SELECT array_agg(DISTINCT contact_id) INTO changed FROM new_rows
      WHERE contact_id IS NOT NULL AND kind = 'email';
  END IF;
  PERFORM sb_refresh_contacts(changed);
  RETURN NULL;
END $$;

CREATE FUNCTION sb_leads_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE changed bigint[];
BEGIN
  -- A bulk import refreshes the documents itself, once per batch (crm/importer.py).
  IF current_setting('switchboard.bulk', true) = 'on' THEN RETURN NULL; END IF;
  IF TG_OP = 'DELETE' THEN
    DELETE FROM search_documents d USING old_rows o WHERE d.kind = 'lead' AND d.record_id = o.id;
    RETURN NULL;
  ELSIF TG_OP = 'INSERT' THEN
    SELECT array_agg(id) INTO changed FROM new_rows;
  ELSE
    SELECT array_agg(n.id) INTO changed FROM new_rows n JOIN old_rows o ON o.id = n.id
      WHERE (n.name, n.company, n.fields, n.status) IS DISTINCT FROM (o.name, o.company, o.fields, o.status);
  END IF;
  PERFORM sb_refresh_leads(changed);
  RETURN NULL;
END $$;

CREATE FUNCTION sb_conversations_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE changed bigint[];
BEGIN
  -- A bulk import refreshes the documents itself, once per batch (crm/importer.py).
  IF current_setting('switchboard.bulk', true) = 'on' THEN RETURN NULL; END IF;
  IF TG_OP = 'DELETE' THEN
    DELETE FROM search_documents d USING old_rows o WHERE d.kind = 'conversation' AND d.record_id = o.id;
    RETURN NULL;
  ELSIF TG_OP = 'INSERT' THEN
    SELECT array_agg(id) INTO changed FROM new_rows;
  ELSE
    -- Conversations change all day (status, assignee, times): only these fields are searched.
    SELECT array_agg(n.id) INTO changed FROM new_rows n JOIN old_rows o ON o.id = n.id
      WHERE (n.subject, n.contact_id, n.relation_id, n.lead_id, n.confidential, n.status)
        IS DISTINCT FROM (o.subject, o.contact_id, o.relation_id, o.lead_id, o.confidential, o.status);
  END IF;
  PERFORM sb_refresh_conversations(changed);
  RETURN NULL;
END $$;
"""

TABLES = ("contacts", "relations", "projects", "identities", "leads", "conversations")


def triggers(table: str) -> str:
    function = f"sb_{table}_changed"
    return f"""
CREATE TRIGGER sb_{table}_insert AFTER INSERT ON {table}
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}();
CREATE TRIGGER sb_{table}_update AFTER UPDATE ON {table}
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION {function}();
CREATE TRIGGER sb_{table}_delete AFTER DELETE ON {table}
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}();
"""


BACKFILL = """
SELECT sb_refresh_relations(ARRAY(SELECT id FROM relations));
SELECT sb_refresh_contacts(ARRAY(SELECT id FROM contacts));
SELECT sb_refresh_projects(ARRAY(SELECT id FROM projects));
SELECT sb_refresh_leads(ARRAY(SELECT id FROM leads));
SELECT sb_refresh_conversations(ARRAY(SELECT id FROM conversations));
"""


def statements(sql: str, end: str) -> list[str]:
    """One statement per execute (asyncpg prepares each): split after each terminator."""
    return [part.strip() + end for part in sql.split(end + "\n") if part.strip()]


def upgrade() -> None:
    for statement in statements(FUNCTIONS, "$$;"):
        op.execute(statement.removesuffix(";"))
    for table in TABLES:
        for statement in statements(triggers(table), ";"):
            op.execute(statement)
    for statement in statements(BACKFILL, ";"):
        op.execute(statement)


def downgrade() -> None:
    for table in TABLES:
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS sb_{table}_{event} ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS sb_{table}_changed()")
    for kind in ("contacts", "relations", "projects", "leads", "conversations"):
        op.execute(f"DROP FUNCTION IF EXISTS sb_refresh_{kind}(bigint[])")
    op.execute("DROP FUNCTION IF EXISTS sb_remember_words(text, bigint[])")
    op.execute("DROP FUNCTION IF EXISTS sb_vector(text, text, text)")
    op.execute("DROP FUNCTION IF EXISTS sb_company(text)")
    op.execute("DROP FUNCTION IF EXISTS sb_words(text)")
    op.execute("DELETE FROM search_documents")
    op.execute("DELETE FROM search_words")
