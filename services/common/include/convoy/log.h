#pragma once
// Log lines say who, what and which: `LOG(INFO) << LogCtx{...} << "event=..."` prints
// service, correlation id, conversation key and dedupe key where they apply.
#include <ostream>
#include <string>

namespace convoy {

struct LogCtx {
  explicit LogCtx(std::string h, std::string corr = "", std::string conv = "", std::string dedupe = "")
      : handler(std::move(h)), correlation_id(std::move(corr)), conversation_key(std::move(conv)),
        dedupe_key(std::move(dedupe)) {}
  std::string handler;
  std::string correlation_id;
  std::string conversation_key;
  std::string dedupe_key;
};

std::ostream& operator<<(std::ostream& os, const LogCtx& ctx);

}  // namespace convoy
