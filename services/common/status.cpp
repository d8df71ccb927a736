#include "convoy/status.h"

namespace convoy {

const char* CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "ok";
    case Code::kInvalidArgument:
      return "invalid_argument";
    case Code::kUnauthenticated:
      return "unauthenticated";
    case Code::kNotFound:
      return "not_found";
    case Code::kTooLarge:
      return "too_large";
    case Code::kUnavailable:
      return "unavailable";
    case Code::kTimeout:
      return "timeout";
    case Code::kRejected:
      return "rejected";
    case Code::kInternal:
      return "internal";
  }
  return "unknown";
}

bool IsTransient(Code code) {
  switch (code) {
    case Code::kUnavailable:
    case Code::kTimeout:
      return true;
    case Code::kOk:
    case Code::kInvalidArgument:
    case Code::kUnauthenticated:
    case Code::kNotFound:
    case Code::kTooLarge:
    case Code::kRejected:
    case Code::kInternal:
      return false;
  }
  return false;
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return std::string(CodeName(code_)) + ": " + message_;
}

}  // namespace convoy
