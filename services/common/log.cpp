#include "convoy/log.h"

#include "convoy/config.h"

namespace convoy {

std::ostream& operator<<(std::ostream& os, const LogCtx& ctx) {
  os << "service=" << ServiceName();
  if (!ctx.handler.empty()) os << " handler=" << ctx.handler;
  if (!ctx.correlation_id.empty()) os << " correlation_id=" << ctx.correlation_id;
  if (!ctx.conversation_key.empty()) os << " conversation=" << ctx.conversation_key;
  if (!ctx.dedupe_key.empty()) os << " dedupe_key=" << ctx.dedupe_key;
  return os << ' ';
}

}  // namespace convoy
