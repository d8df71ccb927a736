#include "convoy/log.h"

#include <gflags/gflags.h>
#include <glog/logging.h>

#include <cctype>
#include <cstdio>
#include <ctime>

#include "convoy/config.h"
#include "convoy/json.h"

DEFINE_string(log_format, "text",
              "text: glog's lines on stderr; json: one JSON object per line on stderr (ts, level, "
              "file, line, and "
              "every key=value of the line as a member), for log pipelines");
static bool ValidateLogFormat(const char* flag, const std::string& v) {
  if (v == "text" || v == "json") return true;
  std::fprintf(stderr, "invalid value for --%s: %s (text or json)\n", flag, v.c_str());
  return false;
}
DEFINE_validator(log_format, &ValidateLogFormat);
DEFINE_bool(log_personal_data, false,
            "Show phone numbers and user IDs in logs as they are (by default all but their last 4 "
            "characters are masked)");

namespace convoy {

std::string MaskPersonal(std::string_view value, bool show) {
  std::string out(value);
  if (show) return out;
  // Letters and digits become '*' but for the last 4 (none of a value of 6 or fewer); a BSUID's
  // country prefix and dots stay, so the kind of identity can still be told.
  const size_t keep = out.size() > 6 ? 4 : 0;
  for (size_t i = 0; i + keep < out.size(); ++i) {
    if (std::isalnum(static_cast<unsigned char>(out[i])) &&
        !(i < 2 && out.size() > 3 && out[2] == '.'))
      out[i] = '*';
  }
  return out;
}

std::string Personal(std::string_view value) {
  return MaskPersonal(value, FLAGS_log_personal_data);
}

std::string PersonalKey(std::string_view conversation_key) {
  size_t colon = conversation_key.find(':');
  if (colon == std::string_view::npos) return Personal(conversation_key);
  return std::string(conversation_key.substr(0, colon + 1)) +
         Personal(conversation_key.substr(colon + 1));
}

std::ostream& operator<<(std::ostream& os, const LogCtx& ctx) {
  os << "service=" << ServiceName();
  if (!ctx.handler.empty()) os << " handler=" << ctx.handler;
  if (!ctx.correlation_id.empty()) os << " correlation_id=" << ctx.correlation_id;
  if (!ctx.conversation_key.empty()) os << " conversation=" << PersonalKey(ctx.conversation_key);
  if (!ctx.dedupe_key.empty()) {
    // Dedupe keys embed the conversation's user ("<number>:<user>:<wamid>:reply"): masked as in
    // conversation= (Personal returns the value itself with --log_personal_data).
    std::string key = ctx.dedupe_key;
    const size_t colon = ctx.conversation_key.find(':');
    const std::string user =
        colon == std::string::npos ? "" : ctx.conversation_key.substr(colon + 1);
    const std::string masked = user.empty() ? user : Personal(user);
    if (!user.empty() && masked != user) {
      for (size_t at = key.find(user); at != std::string::npos;
           at = key.find(user, at + masked.size())) {
        key.replace(at, user.size(), masked);
      }
    }
    os << " dedupe_key=" << key;
  }
  return os << ' ';
}

namespace {

bool IsKeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

}  // namespace

std::string JsonLogLine(const std::string& level, const std::string& ts, const std::string& file,
                        int line, std::string_view message) {
  std::string out = R"({"ts":")" + JsonEscape(ts) + R"(","level":")" + JsonEscape(level) +
                    R"(","file":")" + JsonEscape(file) + R"(","line":)" + std::to_string(line);
  std::string rest;
  size_t i = 0;
  const size_t n = message.size();
  while (i < n) {
    while (i < n && message[i] == ' ') ++i;
    size_t k = i;
    while (k < n && IsKeyChar(message[k])) ++k;
    if (k > i && k < n && message[k] == '=' && message.substr(i, k - i) != "msg") {
      std::string key(message.substr(i, k - i));
      std::string value;
      size_t v = k + 1;
      if (v < n && message[v] == '"') {
        // A quoted value: up to the closing quote (\" inside it is a quote).
        for (++v; v < n && message[v] != '"'; ++v) {
          if (message[v] == '\\' && v + 1 < n && message[v + 1] == '"') ++v;
          value += message[v];
        }
        if (v < n) ++v;
      } else {
        size_t end = message.find(' ', v);
        if (end == std::string_view::npos) end = n;
        value = std::string(message.substr(v, end - v));
        v = end;
      }
      out += R"(,")" + JsonEscape(key) + R"(":")" + JsonEscape(value) + "\"";
      i = v;
      continue;
    }
    // Free text: kept, in order, in "msg".
    size_t end = message.find(' ', i);
    if (end == std::string_view::npos) end = n;
    if (end > i) rest += (rest.empty() ? "" : " ") + std::string(message.substr(i, end - i));
    i = end;
  }
  if (!rest.empty()) out += R"(,"msg":")" + JsonEscape(rest) + "\"";
  return out + "}";
}

namespace {

class JsonSink : public google::LogSink {
 public:
  void send(google::LogSeverity severity, const char*, const char* base_filename, int line,
            const google::LogMessageTime& t, const char* message, size_t message_len) override {
    char ts[64];
    const std::tm& tm = t.tm();
    std::snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(t.usec()));
    std::string out = JsonLogLine(google::GetLogSeverityName(severity), ts, base_filename, line,
                                  std::string_view(message, message_len)) +
                      "\n";
    std::fwrite(out.data(), 1, out.size(), stderr);  // one write per line
  }
};

}  // namespace

void ApplyLogFormat() {
  if (FLAGS_log_format != "json") return;
  FLAGS_logtostderr = false;
  FLAGS_alsologtostderr = false;
  FLAGS_stderrthreshold = google::NUM_SEVERITIES;  // nothing in glog's own format
  FLAGS_timestamp_in_logfile_name = false;
  for (int s = 0; s < google::NUM_SEVERITIES; ++s) google::SetLogDestination(s, "");  // no files
  static JsonSink* sink = new JsonSink();
  google::AddLogSink(sink);
}

}  // namespace convoy
