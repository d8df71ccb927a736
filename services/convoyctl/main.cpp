// convoyctl: the operator's tool. `convoyctl help` lists the commands; `convoyctl <command> --help`
// shows one. Exit codes: 0 ok, 1 warning (health), 2 critical (health), 3 not found, 64 bad usage,
// 69 broker, database or API unavailable.
#include <gflags/gflags.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "ctl.h"

DEFINE_string(amqp_url, "",
              "Broker URL (else CONVOY_AMQP_URL, else the local run's "
              "amqp://guest:guest@127.0.0.1:21672/%2f)");
DEFINE_string(pg_dsn, "",
              "PostgreSQL DSN (else CONVOY_PG_DSN, else the local run's host=127.0.0.1 port=21432 "
              "user=postgres)");
DEFINE_string(outbound_url, "http://127.0.0.1:8083",
              "convoy-outbound's base URL, for `deliveries` and `templates`");
DEFINE_string(
    conversation_url, "http://127.0.0.1:8081",
    "convoy-conversation's base URL, for `conversation list` and `conversation show <id>`");
DEFINE_string(owner, "",
              "conversation list: only conversations this one owns (bot, human, elsewhere)");
DEFINE_string(cursor, "",
              "conversation list: the page after this one (the next_cursor a list printed)");
DEFINE_string(admin_token_file, "",
              "File holding the admin API's bearer token (else CONVOY_ADMIN_TOKEN)");
DEFINE_string(token_file, "",
              "File holding a named API token of the services' --tokens_file (else "
              "CONVOY_API_TOKEN); either wins "
              "over the admin token");
DEFINE_bool(json, false, "Write JSON instead of text");
DEFINE_string(queue, "", "dlq: only this work queue's parking queue (e.g. outbound.send)");
DEFINE_string(reason, "", "dlq: only messages whose first or last reason contains this (any case)");
DEFINE_string(since, "", "dlq: only messages parked within this long (90s, 15m, 2h, 7d)");
DEFINE_string(id, "", "dlq: only the message with this id (its dedupe key)");
DEFINE_string(
    code, "",
    "dlq: only messages whose last failure had this code (x-last-error-code: a Graph error.code)");
DEFINE_string(content, "", "dlq: only messages whose body contains this (any case)");
DEFINE_int32(limit, 0,
             "dlq replay/purge: at most this many (0: all); conversation show: rows per section "
             "(default 50)");
DEFINE_bool(dry_run, false, "dlq replay: list what would be replayed, move nothing");
DEFINE_bool(yes, false, "dlq purge: confirm the deletion");
DEFINE_string(phone_number_id, "",
              "conversation show: the business number, when the person writes to several; "
              "conversation list: only "
              "this number's");
DEFINE_string(status, "",
              "deliveries list: only this status (parked, held, delivered, ...); templates list: "
              "(APPROVED, PAUSED, "
              "...); conversation list: open or closed (the 24-hour window)");
DEFINE_string(waba_id, "",
              "templates: the WhatsApp business account (list: only its templates; sync: the one "
              "read from Graph)");
DEFINE_string(sink, "", "deliveries list: only this sink");
DEFINE_string(window, "1h", "stats: the window (90s, 15m, 2h, 7d)");
DEFINE_int64(stuck, 5,
             "health: conversations waiting on an effect past its due time before a warning");
DEFINE_string(stuck_after, "5m", "health: how long past due a command counts as stuck");
DEFINE_int64(parked, 10, "health: parked messages before a warning");
DEFINE_int64(errors, 10,
             "health: failed sends and delivery attempts in the last hour before a warning");
DEFINE_double(p95_seconds, 2.0,
              "health: p95 webhook-to-send latency over the last hour before a warning");
DEFINE_double(
    failed_percent, 1.0,
    "health: per cent of the last hour's settled sends that failed for good before a warning");

namespace {

const std::map<std::string, std::string>& Usage() {
  static const std::map<std::string, std::string> usage = {
      {"dlq",
       "convoyctl dlq list [--queue Q] [--reason TEXT] [--since 2h] [--code N] [--content TEXT] "
       "[--json]\n"
       "convoyctl dlq show ID [--queue Q] [--json]\n"
       "convoyctl dlq replay [--id ID | --queue Q --reason TEXT --since T] [--limit N] "
       "[--dry_run]\n"
       "convoyctl dlq purge [filters] --yes\n"
       "  Parked messages (<queue>.dlq): id, queue, first and last reason, attempts, age, "
       "correlation id.\n"
       "  replay puts them back on their work queue with a fresh attempt count (history in\n"
       "  x-replay-history); safe to repeat: every consumer deduplicates. purge deletes them.\n"},
      {"conversation",
       "convoyctl conversation show <phone | BSUID | conversation key> [--phone_number_id N] "
       "[--limit 50] [--json]\n"
       "  Identity, flow and step, fields and photos, transitions with their triggers, every send\n"
       "  with its status and error, deliveries (read from the database).\n"
       "convoyctl conversation show <conversation id> [--limit 100] [--json]\n"
       "  The transcript: owner, window, then each message's time, author, kind, text and "
       "delivery\n"
       "  status, through convoy-conversation's API (--conversation_url; a token as for "
       "deliveries).\n"
       "convoyctl conversation list [--owner human] [--phone_number_id N] [--status open] [--limit "
       "N] [--cursor C]\n"
       "  Conversations, newest change first: id, owner, number, customer, flow, window.\n"},
      {"deliveries",
       "convoyctl deliveries list [--status parked] [--sink NAME] [--limit N]\n"
       "convoyctl deliveries replay --id N | --since 2h [--status parked]\n"
       "  Results to the business's sinks, through convoy-outbound's admin API (--outbound_url;\n"
       "  a token of --token_file or CONVOY_API_TOKEN, else CONVOY_ADMIN_TOKEN).\n"},
      {"templates",
       "convoyctl templates list [--waba_id N] [--status APPROVED] [--limit N]\n"
       "convoyctl templates sync --waba_id N\n"
       "  Each WABA's message templates (status, category, quality) as outbound keeps them from\n"
       "  Meta's webhooks; sync reads the WABA's whole catalog from Graph with one of its "
       "numbers'\n"
       "  token. Through convoy-outbound's admin API (viewer lists, operator syncs).\n"},
      {"token",
       "convoyctl token hash NAME ROLE TENANT < token\n"
       "  Reads a token from stdin (one line) and prints its line for the services' "
       "--tokens_file:\n"
       "  NAME ROLE TENANT sha256:<hex>. ROLE: viewer, agent, manager, operator or admin; TENANT: "
       "a\n"
       "  tenant id or '*'. The token itself is never printed or stored; make it random, e.g.\n"
       "  openssl rand -hex 32.\n"},
      {"health",
       "convoyctl health [--stuck 5] [--stuck_after 5m] [--parked 10] [--errors 10] [--p95_seconds "
       "2] [--failed_percent 1] [--json]\n"
       "  Each check over its threshold is a warning (exit 1), over twice it or not checkable is\n"
       "  critical (exit 2); all within: exit 0. For cron jobs and probes.\n"},
      {"stats",
       "convoyctl stats [--window 1h] [--json]\n"
       "  Messages in, sends by status, webhook-to-send latency percentiles, deliveries by "
       "status,\n"
       "  transitions by note, over the window.\n"},
  };
  return usage;
}

// A list's query string: the parameters given, and --limit when set.
std::string Query(const std::vector<std::pair<const char*, std::string>>& params) {
  std::string q;
  auto add = [&](const char* k, const std::string& v) {
    if (!v.empty()) q += (q.empty() ? "" : "&") + std::string(k) + "=" + v;
  };
  for (const auto& [k, v] : params) add(k, v);
  if (FLAGS_limit > 0) add("limit", std::to_string(FLAGS_limit));
  return q;
}

void PrintHelp(std::ostream& out) {
  out << "convoyctl: operate convoy (parked messages, conversations, deliveries, health, "
         "stats)\n\n";
  for (const auto& [cmd, text] : Usage()) out << text << "\n";
  out << "Common flags: --amqp_url, --pg_dsn, --outbound_url, --conversation_url, --token_file, "
         "--admin_token_file, --json.\n"
         "convoyctl --helpfull lists every flag.\n"
         "Exit codes: 0 ok, 1 warning, 2 critical, 3 not found, 64 bad usage, 69 unavailable.\n";
}

std::string EnvOr(const std::string& flag, const char* env, const std::string& fallback) {
  if (!flag.empty()) return flag;
  const char* v = std::getenv(env);
  return v && *v ? v : fallback;
}

int Bad(const std::string& why, const std::string& command) {
  std::cerr << "convoyctl: " << why << "\n";
  auto it = Usage().find(command);
  if (it != Usage().end()) std::cerr << "usage:\n" << it->second;
  return convoy::ctl::kUsage;
}

}  // namespace

int main(int argc, char** argv) {
  std::deque<std::string> normalized;  // stable storage for rewritten arguments
  // Per-command help before gflags sees --help.
  std::vector<std::string> args(argv + 1, argv + argc);
  const bool help = std::find(args.begin(), args.end(), "--help") != args.end() ||
                    std::find(args.begin(), args.end(), "-h") != args.end();
  if (args.empty() || args[0] == "help" ||
      (help && (args[0].rfind("-", 0) == 0 || !Usage().count(args[0])))) {
    PrintHelp(std::cout);
    return args.empty() ? convoy::ctl::kUsage : convoy::ctl::kOk;
  }
  if (help) {
    std::cout << Usage().at(args[0]);
    return convoy::ctl::kOk;
  }
  // --dry-run and --dry_run alike: flag names are written with either.
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) continue;
    const size_t end = std::min(a.find('='), a.size());
    std::replace(a.begin() + 2, a.begin() + static_cast<std::ptrdiff_t>(end), '-', '_');
    normalized.push_back(a);
    argv[i] = normalized.back().data();
  }
  gflags::SetUsageMessage("convoyctl <command> ...; convoyctl help");
  gflags::ParseCommandLineFlags(&argc, &argv, /*remove_flags=*/true);
  std::vector<std::string> pos(argv + 1, argv + argc);
  if (pos.empty()) return Bad("no command", "");
  const std::string cmd = pos[0];
  const std::string sub = pos.size() > 1 ? pos[1] : "";

  convoy::ctl::Options o;
  o.amqp_url = EnvOr(FLAGS_amqp_url, "CONVOY_AMQP_URL", "amqp://guest:guest@127.0.0.1:21672/%2f");
  o.pg_dsn = EnvOr(FLAGS_pg_dsn, "CONVOY_PG_DSN",
                   "host=127.0.0.1 port=21432 user=postgres dbname=postgres");
  o.outbound_url = FLAGS_outbound_url;
  o.conversation_url = FLAGS_conversation_url;
  o.json = FLAGS_json;
  if (!FLAGS_token_file.empty()) {
    std::ifstream in(FLAGS_token_file);
    if (!in) return Bad("--token_file: cannot read " + FLAGS_token_file, cmd);
    std::getline(in, o.admin_token);
  } else if (!EnvOr("", "CONVOY_API_TOKEN", "").empty()) {
    o.admin_token = EnvOr("", "CONVOY_API_TOKEN", "");
  } else if (!FLAGS_admin_token_file.empty()) {
    std::ifstream in(FLAGS_admin_token_file);
    if (!in) return Bad("--admin_token_file: cannot read " + FLAGS_admin_token_file, cmd);
    std::getline(in, o.admin_token);
  } else {
    o.admin_token = EnvOr("", "CONVOY_ADMIN_TOKEN", "");
  }
  if (FLAGS_limit < 0) return Bad("--limit must be 0 or more", cmd);

  if (cmd == "dlq") {
    convoy::ctl::DlqFilter f;
    f.queue = FLAGS_queue;
    f.reason = FLAGS_reason;
    f.id = FLAGS_id;
    f.code = FLAGS_code;
    f.content = FLAGS_content;
    f.limit = static_cast<size_t>(FLAGS_limit);
    if (!FLAGS_since.empty()) {
      int64_t s = convoy::ctl::ParseDuration(FLAGS_since);
      if (s < 0) return Bad("--since: not a duration: " + FLAGS_since + " (90s, 15m, 2h, 7d)", cmd);
      f.since = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count() -
                s;
    }
    if (sub == "list") return convoy::ctl::DlqList(o, f, std::cout, std::cerr);
    if (sub == "show") {
      if (pos.size() < 3 && f.id.empty()) return Bad("dlq show needs the message's id", cmd);
      if (pos.size() >= 3) f.id = pos[2];
      return convoy::ctl::DlqShow(o, f, std::cout, std::cerr);
    }
    if (sub == "replay") return convoy::ctl::DlqReplay(o, f, FLAGS_dry_run, std::cout, std::cerr);
    if (sub == "purge") {
      bool yes = FLAGS_yes;
      if (!yes && isatty(0)) {
        std::cerr << "Delete the matching parked messages for good? [y/N] ";
        std::string answer;
        std::getline(std::cin, answer);
        yes = answer == "y" || answer == "Y" || answer == "yes";
      }
      return convoy::ctl::DlqPurge(o, f, yes, std::cout, std::cerr);
    }
    return Bad("dlq: unknown subcommand '" + sub + "'", cmd);
  }
  if (cmd == "conversation") {
    if (sub == "list") {
      if (!FLAGS_owner.empty() && FLAGS_owner != "bot" && FLAGS_owner != "human" &&
          FLAGS_owner != "elsewhere") {
        return Bad("--owner is bot, human or elsewhere", cmd);
      }
      if (!FLAGS_status.empty() && FLAGS_status != "open" && FLAGS_status != "closed") {
        return Bad("--status is open or closed (the 24-hour window) for conversation list", cmd);
      }
      if (FLAGS_phone_number_id.find_first_not_of("0123456789") != std::string::npos) {
        return Bad("--phone_number_id is a number", cmd);
      }
      if (FLAGS_cursor.find_first_not_of("0123456789abcdef.-") != std::string::npos) {
        return Bad("--cursor is the next_cursor a list printed, unchanged", cmd);
      }
      return convoy::ctl::ConversationList(o,
                                           Query({{"owner", FLAGS_owner},
                                                  {"number", FLAGS_phone_number_id},
                                                  {"status", FLAGS_status},
                                                  {"cursor", FLAGS_cursor}}),
                                           std::cout, std::cerr);
    }
    if (sub != "show" || pos.size() < 3)
      return Bad("conversation show needs a conversation id, phone number, BSUID or key", cmd);
    if (convoy::ctl::IsConversationId(pos[2])) {
      if (FLAGS_limit > 1000) return Bad("--limit is at most 1000 messages", cmd);
      return convoy::ctl::ConversationTranscript(o, pos[2], FLAGS_limit > 0 ? FLAGS_limit : 100,
                                                 std::cout, std::cerr);
    }
    return convoy::ctl::ConversationShow(o, pos[2], FLAGS_phone_number_id,
                                         FLAGS_limit > 0 ? FLAGS_limit : 50, std::cout, std::cerr);
  }
  if (cmd == "deliveries") {
    if (sub == "list") {
      return convoy::ctl::DeliveriesList(o, Query({{"status", FLAGS_status}, {"sink", FLAGS_sink}}),
                                         std::cout, std::cerr);
    }
    if (sub == "replay") {
      std::string body;
      if (!FLAGS_id.empty()) {
        if (FLAGS_id.find_first_not_of("0123456789") != std::string::npos)
          return Bad("--id: a delivery id is a number", cmd);
        body = R"({"id": )" + FLAGS_id + "}";
      } else if (!FLAGS_since.empty()) {
        int64_t s = convoy::ctl::ParseDuration(FLAGS_since);
        if (s < 0) return Bad("--since: not a duration: " + FLAGS_since, cmd);
        const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
        body = R"({"from": )" + std::to_string(now - s) + R"(, "to": )" + std::to_string(now) +
               (FLAGS_status.empty() ? "" : R"(, "status": ")" + FLAGS_status + "\"") + "}";
      } else {
        return Bad("deliveries replay needs --id or --since", cmd);
      }
      return convoy::ctl::DeliveriesReplay(o, body, std::cout, std::cerr);
    }
    return Bad("deliveries: unknown subcommand '" + sub + "'", cmd);
  }
  if (cmd == "templates") {
    if (sub == "list") {
      return convoy::ctl::TemplatesList(
          o, Query({{"waba_id", FLAGS_waba_id}, {"status", FLAGS_status}}), std::cout, std::cerr);
    }
    if (sub == "sync") {
      if (FLAGS_waba_id.empty() ||
          FLAGS_waba_id.find_first_not_of("0123456789") != std::string::npos) {
        return Bad("templates sync needs --waba_id, a number", cmd);
      }
      return convoy::ctl::TemplatesSync(o, FLAGS_waba_id, std::cout, std::cerr);
    }
    return Bad("templates: unknown subcommand '" + sub + "'", cmd);
  }
  if (cmd == "token") {
    if (sub != "hash" || pos.size() != 5)
      return Bad("token hash needs NAME ROLE TENANT (the token on stdin)", cmd);
    return convoy::ctl::TokenHash(pos[2], pos[3], pos[4], std::cin, std::cout, std::cerr);
  }
  if (cmd == "health") {
    convoy::ctl::HealthThresholds t;
    t.stuck = FLAGS_stuck;
    t.parked = FLAGS_parked;
    t.errors = FLAGS_errors;
    t.p95_seconds = FLAGS_p95_seconds;
    t.failed_percent = FLAGS_failed_percent;
    t.stuck_after = convoy::ctl::ParseDuration(FLAGS_stuck_after);
    if (t.stuck_after < 0) return Bad("--stuck_after: not a duration: " + FLAGS_stuck_after, cmd);
    // !(x > 0) also refuses nan, which every comparison would let through.
    if (t.stuck < 0 || t.parked < 0 || t.errors < 0 || !(t.p95_seconds > 0) ||
        std::isinf(t.p95_seconds) || !(t.failed_percent > 0) || t.failed_percent > 100) {
      return Bad("thresholds must be positive", cmd);
    }
    return convoy::ctl::Health(o, t, std::cout, std::cerr);
  }
  if (cmd == "stats") {
    int64_t w = convoy::ctl::ParseDuration(FLAGS_window);
    if (w <= 0) return Bad("--window: not a duration: " + FLAGS_window, cmd);
    return convoy::ctl::Stats(o, w, std::cout, std::cerr);
  }
  return Bad("unknown command '" + cmd + "' (convoyctl help)", "");
}
