#pragma once
// Expected failures are values: every layer returns a Status (or Result<T>) with a code from
// this enum, and callers map codes exhaustively to HTTP answers or ack decisions.
#include <optional>
#include <string>
#include <utility>

namespace convoy {

enum class Code {
  kOk,
  kInvalidArgument,  // bad input: malformed, schema-invalid, out of range (permanent)
  kUnauthenticated,  // bad or missing credentials/signature (permanent)
  kNotFound,
  kTooLarge,
  kUnavailable,  // dependency down or connection lost (transient)
  kTimeout,      // deadline passed (transient)
  kRejected,     // the peer refused it: nack, return, permanent remote error
  kInternal,     // a bug or an impossible state
};

const char* CodeName(Code code);
// Transient codes are worth retrying; the others are not.
bool IsTransient(Code code);

// [[nodiscard]]: a Status or Result returned and not looked at is a failure gone unseen. Where
// ignoring one is right, the call says so: `(void)Call();  // why`.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() { return *value_; }
  const T& value() const { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace convoy
