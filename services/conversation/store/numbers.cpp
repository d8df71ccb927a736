#include "store/numbers.h"

#include <glog/logging.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <vector>

#include "convoy/rapidjson_util.h"

namespace convoy::conversation {

namespace {

constexpr const char* kLockNumber = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))";
constexpr const char* kExistingNumber =
    "SELECT tenant, status, source FROM numbers WHERE phone_number_id = $1";
// Inserted (created), replaced when anything differs (updated), or left alone (no row back). A
// pause keeps its reason and time while the number stays paused; any other status clears them.
constexpr const char* kUpsertNumber =
    "INSERT INTO numbers AS n (phone_number_id, tenant, waba_id, display_phone_number, app, "
    "graph_token_ref, "
    "throughput, coexistence, default_flow, greeting, templates_language, status, source, sinks, "
    "graph_version, "
    "paused_reason, paused_at, flows, partner_app_id) VALUES ($1, $2, $3, $4, $5, $6, $7::int, "
    "$8::boolean, "
    "NULLIF($9, ''), NULLIF($10, ''), NULLIF($11, ''), $12, $13, $14::jsonb, NULLIF($15, ''), "
    "CASE WHEN $12 = 'paused' THEN 'paused through the registry (' || $13 || ')' END, "
    "CASE WHEN $12 = 'paused' THEN now() END, string_to_array(NULLIF($16, ''), ','), NULLIF($17, "
    "'')) "
    "ON CONFLICT (phone_number_id) DO UPDATE SET waba_id = EXCLUDED.waba_id, display_phone_number "
    "= "
    "EXCLUDED.display_phone_number, app = EXCLUDED.app, graph_token_ref = "
    "EXCLUDED.graph_token_ref, throughput = "
    "EXCLUDED.throughput, coexistence = EXCLUDED.coexistence, default_flow = "
    "EXCLUDED.default_flow, greeting = "
    "EXCLUDED.greeting, templates_language = EXCLUDED.templates_language, status = "
    "EXCLUDED.status, source = "
    "EXCLUDED.source, sinks = EXCLUDED.sinks, graph_version = EXCLUDED.graph_version, flows = "
    "EXCLUDED.flows, "
    "partner_app_id = EXCLUDED.partner_app_id, updated_at = now(), "
    "paused_reason = CASE WHEN EXCLUDED.status <> 'paused' THEN NULL WHEN n.status = 'paused' THEN "
    "n.paused_reason "
    "ELSE EXCLUDED.paused_reason END, "
    "paused_at = CASE WHEN EXCLUDED.status <> 'paused' THEN NULL WHEN n.status = 'paused' THEN "
    "n.paused_at "
    "ELSE EXCLUDED.paused_at END "
    "WHERE (n.waba_id, n.display_phone_number, n.app, n.graph_token_ref, n.throughput, "
    "n.coexistence, n.default_flow, "
    "n.greeting, n.templates_language, n.status, n.source, n.sinks, n.graph_version, n.flows, "
    "n.partner_app_id) IS "
    "DISTINCT FROM (EXCLUDED.waba_id, EXCLUDED.display_phone_number, EXCLUDED.app, "
    "EXCLUDED.graph_token_ref, "
    "EXCLUDED.throughput, EXCLUDED.coexistence, EXCLUDED.default_flow, EXCLUDED.greeting, "
    "EXCLUDED.templates_language, "
    "EXCLUDED.status, EXCLUDED.source, EXCLUDED.sinks, EXCLUDED.graph_version, EXCLUDED.flows, "
    "EXCLUDED.partner_app_id) "
    "RETURNING (xmax = 0)";
// As number.v1 says it, plus where it came from and when.
constexpr const char* kNumberJson =
    "json_strip_nulls(json_build_object('phone_number_id', phone_number_id, 'tenant', tenant, "
    "'waba_id', waba_id, "
    "'display_phone_number', display_phone_number, 'app', app, 'graph_token', graph_token_ref, "
    "'graph_version', "
    "graph_version, 'throughput', "
    "throughput, 'coexistence', coexistence, 'default_flow', default_flow, 'flows', flows, "
    "'greeting', greeting, "
    "'templates_language', templates_language, 'status', status, 'paused_reason', paused_reason, "
    "'paused_at', "
    "paused_at, 'sinks', sinks, 'partner_app_id', partner_app_id, 'source', source, 'created_at', "
    "created_at, "
    "'updated_at', updated_at))";
constexpr const char* kOffboard =
    "UPDATE numbers SET status = 'offboarded', source = 'api', paused_reason = NULL, paused_at = "
    "NULL, updated_at = now() "
    "WHERE phone_number_id = $1 "
    "RETURNING status";
constexpr const char* kLookup =
    "SELECT status, coalesce(greeting, ''), app, tenant, coalesce(default_flow, ''), "
    "coalesce(array_to_string(flows, ','), "
    "''), coalesce(templates_language, '') FROM numbers "
    "WHERE phone_number_id = $1";
constexpr const char* kSinksOf = "SELECT sinks -> $2 FROM numbers WHERE phone_number_id = $1";

bool Digits(const std::string& s) {
  return !s.empty() && s.size() <= 32 && s.find_first_not_of("0123456789") == std::string::npos;
}

// "a,b" → {a, b}; "" → {}. Flow names hold no comma (number.v1's pattern).
std::vector<std::string> SplitNames(const std::string& joined) {
  std::vector<std::string> out;
  for (size_t at = 0; !joined.empty() && at <= joined.size();) {
    size_t comma = joined.find(',', at);
    if (comma == std::string::npos) comma = joined.size();
    out.push_back(joined.substr(at, comma - at));
    at = comma + 1;
  }
  return out;
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ",") + n;
  return out;
}

bool SinkName(const std::string& s) {
  if (s.empty() || s.size() > 40 || s[0] < 'a' || s[0] > 'z') return false;
  return s.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") == std::string::npos;
}

// What a schema failure at a member means, in words.
std::string Hint(const std::string& message) {
  static const std::vector<std::pair<const char*, const char*>> kHints = {
      {"'#/graph_token'",
       "graph_token says where the Graph token is, env:NAME or file:/absolute/path; never the "
       "token itself"},
      {"'#/graph_version'", "graph_version is a Graph API version such as v24.0"},
      {"'#/status'", "status is one of active, paused, offboarded"},
      {"'#/phone_number_id'", "phone_number_id is Meta's numeric id of the number"},
      {"'#/waba_id'", "waba_id is the numeric id of the WhatsApp business account"},
      {"'#/tenant'", "tenant is 1-64 of a-z, 0-9, _ and -, starting with a letter or digit"},
      {"'#/throughput'", "throughput is whole messages per second, 1..1000"},
      {"'#/flows",
       "flows names 1-32 distinct flows (a-z, 0-9, _ and -, starting with a letter or digit)"},
      {"'#/templates_language'", "templates_language is a language code such as en or en_US"},
      {"'#/partner_app_id'",
       "partner_app_id is the numeric id of the Meta app the number shares its threads with"},
      {"'#/sinks",
       "sinks maps a flow's sink name to 1-8 distinct sink names of --sinks_file (a-z, 0-9, _, -)"},
  };
  for (const auto& [at, hint] : kHints) {
    if (message.find(std::string("at ") + at) != std::string::npos)
      return std::string(hint) + " (" + message + ")";
  }
  return message;
}

}  // namespace

const char* NumberStatusName(NumberStatus s) {
  switch (s) {
    case NumberStatus::kUnknown:
      return "unknown";
    case NumberStatus::kActive:
      return "active";
    case NumberStatus::kPaused:
      return "paused";
    case NumberStatus::kOffboarded:
      return "offboarded";
  }
  return "unknown";
}

Result<NumberEntry> ParseNumber(const std::string& phone_number_id, const std::string& body,
                                const SchemaRegistry& schemas) {
  if (!Digits(phone_number_id)) {
    return Status(Code::kInvalidArgument,
                  "a phone_number_id is Meta's numeric id of the number (1-32 digits), not '" +
                      phone_number_id.substr(0, 40) + "'");
  }
  rapidjson::Document d;
  Status valid = schemas.ValidateAs("number", 1, body, &d);
  if (!valid.ok()) return Status(Code::kInvalidArgument, Hint(valid.message()));
  NumberEntry e;
  e.phone_number_id = JsonStr(d, "phone_number_id");
  if (e.phone_number_id != phone_number_id) {
    return Status(Code::kInvalidArgument, "the body's phone_number_id " + e.phone_number_id +
                                              " is not the one it is put as, " + phone_number_id);
  }
  e.tenant = JsonStr(d, "tenant");
  e.waba_id = JsonStr(d, "waba_id");
  e.display_phone_number = JsonStr(d, "display_phone_number");
  e.graph_token = JsonStr(d, "graph_token");
  e.graph_version = JsonStr(d, "graph_version");
  if (d.HasMember("app")) e.app = JsonStr(d, "app");
  if (d.HasMember("coexistence")) e.coexistence = d["coexistence"].GetBool();
  e.throughput = e.coexistence ? 20 : 80;
  if (d.HasMember("throughput")) e.throughput = d["throughput"].GetInt();
  if (e.coexistence && e.throughput > 20) {
    return Status(Code::kInvalidArgument,
                  "a coexistence number (shared with the WhatsApp Business app) sends at most "
                  "20 messages/s; throughput is " +
                      std::to_string(e.throughput));
  }
  e.default_flow = JsonStr(d, "default_flow");
  if (d.HasMember("flows")) {
    for (const auto& f : d["flows"].GetArray())
      e.flows.emplace_back(f.GetString(), f.GetStringLength());
  }
  e.greeting = JsonStr(d, "greeting");
  if (d.HasMember("templates_language")) e.templates_language = JsonStr(d, "templates_language");
  if (d.HasMember("status")) e.status = JsonStr(d, "status");
  e.partner_app_id = JsonStr(d, "partner_app_id");
  if (d.HasMember("sinks")) {
    // The names (what the schema cannot check: RapidJSON's patternProperties is unreliable).
    for (const auto& m : d["sinks"].GetObject()) {
      if (!SinkName(std::string(m.name.GetString(), m.name.GetStringLength()))) {
        return Status(Code::kInvalidArgument,
                      "sinks: \"" + std::string(m.name.GetString()).substr(0, 64) +
                          "\" is not a flow's sink name (1-40 of a-z, 0-9, _ and -, starting "
                          "with a letter)");
      }
    }
    e.sinks_json = JsonText(d["sinks"]);
  }
  return e;
}

Status CheckNumber(const NumberEntry& e) {
  Status runs = e.default_flow.empty() ? Status::Ok()
                                       : NumberRuns(e.phone_number_id, e.flows, e.default_flow);
  if (runs.ok()) return runs;
  return Status(Code::kInvalidArgument, "default_flow is not one of flows: " + runs.message() +
                                            "; name one of them, or add it to flows");
}

Status NumberRuns(const std::string& phone_number_id, const std::vector<std::string>& flows,
                  const std::string& flow) {
  if (flows.empty() || std::find(flows.begin(), flows.end(), flow) != flows.end())
    return Status::Ok();
  return Status(Code::kInvalidArgument, "number " + phone_number_id + " does not run the flow " +
                                            flow + " (its flows: " + JoinNames(flows) + ")");
}

Result<PutOutcome> PutNumber(PgConnection& db, const NumberEntry& e, const std::string& source) {
  auto tx = PgTransaction::Begin(db);
  if (!tx.ok()) return tx.status();
  Status s = db.Exec(kLockNumber, {"number:" + e.phone_number_id}).status();
  if (!s.ok()) return s;
  auto existing = db.Exec(kExistingNumber, {e.phone_number_id});
  if (!existing.ok()) return existing.status();
  if (!existing->empty() && existing->get(0, 0) != e.tenant) return PutOutcome::kOtherTenant;
  // A file is put again at every start: saying `active`, it must not resume a number Meta had
  // paused since (account_update, 131031, 133010). Only a person does that, through the API.
  const bool keep_meta_pause = source == "file" && e.status == "active" && !existing->empty() &&
                               existing->get(0, 1) == "paused" && existing->get(0, 2) == "meta";
  auto r = db.Exec(kUpsertNumber,
                   {e.phone_number_id, e.tenant, e.waba_id, e.display_phone_number, e.app,
                    e.graph_token, std::to_string(e.throughput), e.coexistence ? "true" : "false",
                    e.default_flow, e.greeting, e.templates_language,
                    keep_meta_pause ? "paused" : e.status, keep_meta_pause ? "meta" : source,
                    e.sinks_json, e.graph_version, JoinNames(e.flows), e.partner_app_id});
  if (!r.ok()) return r.status();
  s = tx->Commit();
  if (!s.ok()) return s;
  if (r->empty()) return PutOutcome::kUnchanged;
  return r->get(0, 0) == "t" ? PutOutcome::kCreated : PutOutcome::kUpdated;
}

Result<std::string> ShowNumber(PgConnection& db, const std::string& phone_number_id) {
  auto r = db.Exec(
      std::string("SELECT ") + kNumberJson + "::text FROM numbers WHERE phone_number_id = $1",
      {phone_number_id});
  if (!r.ok()) return r.status();
  if (r->empty())
    return Status(Code::kNotFound, "no number " + phone_number_id + " in the registry");
  return r->get(0, 0);
}

Result<std::string> ListNumbers(PgConnection& db, const std::string& status,
                                const std::string& tenant) {
  auto r =
      db.Exec(std::string("SELECT json_build_object('numbers', coalesce(json_agg(") + kNumberJson +
                  " ORDER BY phone_number_id), '[]'::json))::text FROM numbers WHERE ($1 = '' OR "
                  "status = $1) "
                  "AND ($2 = '' OR tenant = $2)",
              {status, tenant});
  if (!r.ok()) return r.status();
  return r->get(0, 0);
}

Status OffboardNumber(PgConnection& db, const std::string& phone_number_id) {
  auto r = db.Exec(kOffboard, {phone_number_id});
  if (!r.ok()) return r.status();
  if (r->empty())
    return Status(Code::kNotFound, "no number " + phone_number_id + " in the registry");
  return Status::Ok();
}

Result<NumberLookup> LookupNumber(PgConnection& db, const std::string& phone_number_id) {
  auto r = db.Exec(kLookup, {phone_number_id});
  if (!r.ok()) return r.status();
  NumberLookup n;
  if (r->empty()) return n;
  n.greeting = r->get(0, 1);
  n.app = r->get(0, 2);
  n.tenant = r->get(0, 3);
  n.default_flow = r->get(0, 4);
  n.flows = SplitNames(r->get(0, 5));
  n.templates_language = r->get(0, 6);
  const std::string s = r->get(0, 0);
  n.status = s == "active"   ? NumberStatus::kActive
             : s == "paused" ? NumberStatus::kPaused
                             : NumberStatus::kOffboarded;
  return n;
}

Status LoadNumberFiles(PgConnection& db, const std::string& dir, const SchemaRegistry& schemas) {
  auto files = ReadJsonFiles(dir);
  if (!files.ok() && files.status().code() == Code::kNotFound)
    return Status::Ok();  // numbers come through the API only
  if (!files.ok()) return files.status();
  // Every file checked before any is put: a bad one changes nothing.
  std::vector<NumberEntry> entries;
  for (const auto& f : *files) {
    auto entry = ParseNumber(f.stem, f.text, schemas);
    if (entry.ok()) {
      Status consistent = CheckNumber(*entry);
      if (!consistent.ok()) entry = consistent;
    }
    if (!entry.ok()) {
      return Status(Code::kInvalidArgument, f.path + ": " + entry.status().message() +
                                                " (the file name is the number's phone_number_id)");
    }
    entries.push_back(std::move(*entry));
  }
  for (const auto& e : entries) {
    auto put = PutNumber(db, e, "file");
    if (!put.ok())
      return Status(put.status().code(),
                    dir + "/" + e.phone_number_id + ".json: " + put.status().message());
    if (*put == PutOutcome::kOtherTenant) {
      return Status(Code::kInvalidArgument, dir + "/" + e.phone_number_id +
                                                ".json: the number is registered to another "
                                                "tenant; a number never moves between tenants");
    }
    LOG(INFO) << "service=conversation event=number_loaded phone_number_id=" << e.phone_number_id
              << " tenant=" << e.tenant << " status=" << e.status << " change="
              << (*put == PutOutcome::kCreated   ? "created"
                  : *put == PutOutcome::kUpdated ? "updated"
                                                 : "none");
  }
  return Status::Ok();
}

Result<std::vector<std::string>> NumberSinks(PgConnection& db, const std::string& phone_number_id,
                                             const std::string& flow_sink) {
  auto r = db.Exec(kSinksOf, {phone_number_id, flow_sink});
  if (!r.ok()) return r.status();
  std::vector<std::string> sinks;
  rapidjson::Document d;
  if (!r->empty() && r->at(0, 0)) d.Parse(r->get(0, 0).c_str());
  if (!d.HasParseError() && d.IsArray()) {
    for (const auto& v : d.GetArray()) {
      if (v.IsString()) sinks.emplace_back(v.GetString(), v.GetStringLength());
    }
  }
  if (sinks.empty()) sinks.push_back(flow_sink);
  return sinks;
}

}  // namespace convoy::conversation
