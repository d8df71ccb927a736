// convoy-bare-listener: convoy's HTTP layer answering 200 to POST /webhook with no work, the
// ceiling against which scripts/bench-ingress.sh measures ingress.
#include <gflags/gflags.h>

#include "convoy/config.h"
#include "convoy/flags.h"
#include "convoy/http.h"

int main(int argc, char** argv) {
  convoy::SetFlagDefault("http_threads", "8");  // its best on 2 cores (64 threads: half the rate)
  convoy::InitService("bare-listener", "convoy-bare-listener: HTTP 200 without work", &argc, &argv);
  convoy::InitHttpThreads(static_cast<size_t>(FLAGS_http_threads));
  convoy::HttpServer server(
      {FLAGS_http_host, FLAGS_http_port, 3 << 20, {}, {}, convoy::HttpLimitsFromFlags()});
  server.Route("POST", "/webhook", [](const convoy::HttpRequest&) {
    return convoy::HttpResponse{200, "text/plain; charset=utf-8", "ok\n", {}};
  });
  if (!server.Start().ok()) return 1;
  convoy::WaitForShutdownSignal();
  server.Stop();
  return 0;
}
