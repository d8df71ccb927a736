// The TLS socket of an amqps:// connection: the only file of convoy's AMQP client that includes
// OpenSSL.
#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <string>

#include "convoy/amqp.h"
#include "internal.h"

namespace convoy::amqp_internal {

namespace {

// The first reason the broker's certificate failed verification during this thread's handshake
// (a handshake runs on the connecting thread, inside amqp_socket_open_noblock).
thread_local char t_verify_error[256];

int RecordVerifyError(int ok, X509_STORE_CTX* store) {
  if (!ok && t_verify_error[0] == '\0') {
    char subject[160] = "?";
    if (X509* cert = X509_STORE_CTX_get_current_cert(store)) {
      X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
    }
    std::snprintf(t_verify_error, sizeof(t_verify_error), "%s (certificate %s, depth %d)",
                  X509_verify_cert_error_string(X509_STORE_CTX_get_error(store)), subject,
                  X509_STORE_CTX_get_error_depth(store));
  }
  return ok;
}

// OpenSSL's queued errors as one line (and the queue emptied).
std::string OpenSslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

}  // namespace

void ClearTlsVerifyError() { t_verify_error[0] = '\0'; }

const char* TlsVerifyError() { return t_verify_error; }

bool IsIpAddress(const char* host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

// A TLS socket that verifies the broker: the chain against the CA file (or the system's trust
// store), the host name against the certificate, TLS 1.2 or later. A certificate that does not
// verify fails the handshake itself (SSL_VERIFY_PEER), before any credential is sent; rabbitmq-c
// checks the chain and the name again after the handshake.
Result<amqp_socket_t*> NewTlsSocket(amqp_connection_state_t state, const AmqpOptions& o,
                                    const char* host) {
  amqp_socket_t* socket = amqp_ssl_socket_new(state);
  if (!socket) return Status(Code::kInternal, "amqp_ssl_socket_new failed");
  amqp_ssl_socket_set_verify_peer(socket, 1);
  amqp_ssl_socket_set_verify_hostname(socket, 1);
  Status s = CheckRc(amqp_ssl_socket_set_ssl_versions(socket, AMQP_TLSv1_2, AMQP_TLSvLATEST),
                     "TLS versions");
  if (!s.ok()) return s;
  auto* ctx = static_cast<SSL_CTX*>(amqp_ssl_socket_get_context(socket));
  ERR_clear_error();
  if (o.ca_file.empty()) {
    if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
      return Status(Code::kInvalidArgument,
                    "cannot load the system's trust store: " + OpenSslErrors());
    }
  } else if (amqp_ssl_socket_set_cacert(socket, o.ca_file.c_str()) != AMQP_STATUS_OK) {
    return Status(Code::kInvalidArgument,
                  "cannot load the CA file " + o.ca_file + " (--amqp_ca_file): " + OpenSslErrors());
  }
  if (!o.cert_file.empty() &&
      amqp_ssl_socket_set_key(socket, o.cert_file.c_str(), o.key_file.c_str()) != AMQP_STATUS_OK) {
    return Status(Code::kInvalidArgument, "cannot load the client certificate " + o.cert_file +
                                              " with key " + o.key_file + ": " + OpenSslErrors());
  }
  X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ctx);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  int named = IsIpAddress(host) ? X509_VERIFY_PARAM_set1_ip_asc(param, host)
                                : X509_VERIFY_PARAM_set1_host(param, host, 0);
  if (named != 1)
    return Status(Code::kInternal, "cannot set the TLS peer name: " + OpenSslErrors());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, RecordVerifyError);
  return socket;
}

}  // namespace convoy::amqp_internal
