#include "convoy/metrics.h"

#include <glog/logging.h>

#include <sstream>

namespace convoy {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<uint64_t>[bounds_.size()]) {
  for (size_t i = 0; i < bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::Observe(double value) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (value <= bounds_[i]) buckets_[i].fetch_add(1, std::memory_order_relaxed);
  }
  count_.fetch_add(1, std::memory_order_relaxed);
  if (value > 0) {
    sum_micro_.fetch_add(static_cast<uint64_t>(value * 1e6), std::memory_order_relaxed);
  }
}

double Histogram::Sum() const { return sum_micro_.load(std::memory_order_relaxed) / 1e6; }

std::vector<double> LatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

Registry::Family& Registry::FamilyFor(const std::string& name, const std::string& type,
                                      const std::string& help) {
  Family& f = families_[name];
  if (f.type.empty()) {
    f.type = type;
    f.help = help;
  }
  CHECK_EQ(f.type, type) << "metric " << name << " registered with two types";
  return f;
}

Counter& Registry::GetCounter(const std::string& name, const std::string& help,
                              const std::string& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = FamilyFor(name, "counter", help).counters[labels];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Gauge& Registry::GetGauge(const std::string& name, const std::string& help,
                          const std::string& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = FamilyFor(name, "gauge", help).gauges[labels];
  if (!slot) slot = std::make_unique<Gauge>();
  return *slot;
}

Histogram& Registry::GetHistogram(const std::string& name, const std::string& help,
                                  const std::string& labels, std::vector<double> bounds) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = FamilyFor(name, "histogram", help).histograms[labels];
  if (!slot) slot = std::make_unique<Histogram>(std::move(bounds));
  return *slot;
}

namespace {
std::string WithLabels(const std::string& name, const std::string& labels,
                       const std::string& extra = "") {
  std::string all = labels;
  if (!extra.empty()) all += (all.empty() ? "" : ",") + extra;
  return all.empty() ? name : name + "{" + all + "}";
}
}  // namespace

std::string Registry::Render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::ostringstream out;
  for (const auto& [name, f] : families_) {
    out << "# HELP " << name << ' ' << f.help << "\n# TYPE " << name << ' ' << f.type << '\n';
    for (const auto& [labels, c] : f.counters)
      out << WithLabels(name, labels) << ' ' << c->Value() << '\n';
    for (const auto& [labels, g] : f.gauges)
      out << WithLabels(name, labels) << ' ' << g->Value() << '\n';
    for (const auto& [labels, h] : f.histograms) {
      for (size_t i = 0; i < h->bounds().size(); ++i) {
        std::ostringstream le;
        le << "le=\"" << h->bounds()[i] << '"';
        out << WithLabels(name + "_bucket", labels, le.str()) << ' ' << h->BucketCount(i) << '\n';
      }
      out << WithLabels(name + "_bucket", labels, "le=\"+Inf\"") << ' ' << h->Count() << '\n';
      out << WithLabels(name + "_sum", labels) << ' ' << h->Sum() << '\n';
      out << WithLabels(name + "_count", labels) << ' ' << h->Count() << '\n';
    }
  }
  return out.str();
}

Registry& DefaultRegistry() {
  static Registry* registry = new Registry();  // never destroyed: outlives every thread
  return *registry;
}

}  // namespace convoy
