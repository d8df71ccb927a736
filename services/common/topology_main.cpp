// convoy-topology: prints the RabbitMQ definitions for convoy's topology (boot-time import and
// the management UI's "Import definitions").
#include <iostream>

#include "convoy/topology.h"

int main() {
  std::cout << convoy::DefinitionsJson(convoy::ConvoyTopology());
  return 0;
}
