#include "convoy/metrics.h"

#include <gtest/gtest.h>

namespace convoy {
namespace {

TEST(Metrics, RendersCountersAndHistogramsInPrometheusFormat) {
  Registry r;
  r.GetCounter("convoy_requests_total", "Requests.", "outcome=\"200\"").Inc(3);
  r.GetCounter("convoy_requests_total", "Requests.", "outcome=\"401\"").Inc();
  auto& h = r.GetHistogram("convoy_latency_seconds", "Latency.", "", {0.01, 0.1});
  h.Observe(0.005);
  h.Observe(0.05);
  h.Observe(5);
  std::string text = r.Render();
  EXPECT_NE(text.find("# TYPE convoy_requests_total counter"), std::string::npos);
  EXPECT_NE(text.find("convoy_requests_total{outcome=\"200\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("convoy_requests_total{outcome=\"401\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("convoy_latency_seconds_bucket{le=\"0.01\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("convoy_latency_seconds_bucket{le=\"0.1\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("convoy_latency_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("convoy_latency_seconds_count 3\n"), std::string::npos);
}

TEST(Metrics, SameNameAndLabelsIsSameCounter) {
  Registry r;
  auto& a = r.GetCounter("x_total", "X.", "k=\"v\"");
  auto& b = r.GetCounter("x_total", "X.", "k=\"v\"");
  a.Inc();
  b.Inc();
  EXPECT_EQ(&a, &b);
  EXPECT_EQ(a.Value(), 2u);
}

}  // namespace
}  // namespace convoy
