#pragma once
// Log lines say who, what and which: `LOG(INFO) << LogCtx{...} << "event=..."` prints
// service, correlation id, conversation key and dedupe key where they apply.
#include <ostream>
#include <string>
#include <string_view>

namespace convoy {

struct LogCtx {
  explicit LogCtx(std::string h, std::string corr = "", std::string conv = "",
                  std::string dedupe = "")
      : handler(std::move(h)),
        correlation_id(std::move(corr)),
        conversation_key(std::move(conv)),
        dedupe_key(std::move(dedupe)) {}
  std::string handler;
  std::string correlation_id;
  std::string conversation_key;
  std::string dedupe_key;
};

std::ostream& operator<<(std::ostream& os,
                         const LogCtx& ctx);  // the conversation key through PersonalKey

// Personal data in a log line: a phone number or user ID as it is only with --log_personal_data;
// otherwise masked but for its last 4 characters ("*******0111", "US.****************1918").
std::string Personal(std::string_view value);
// A conversation key ("<phone_number_id>:<identity>"): the business's number as it is, the identity
// through Personal.
std::string PersonalKey(std::string_view conversation_key);
// The masking itself, `show` standing for the flag (for tests).
std::string MaskPersonal(std::string_view value, bool show);

// One log line as JSON (--log_format=json): ts, level, file, line, each key=value of the message
// as a string member (a "quoted value" may hold spaces), and any other text in "msg".
std::string JsonLogLine(const std::string& level, const std::string& ts, const std::string& file,
                        int line, std::string_view message);
// Installs the JSON sink when --log_format=json (InitService calls it).
void ApplyLogFormat();

}  // namespace convoy
