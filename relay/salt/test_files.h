// The salt_wire tests' one file reader: the whole of a file (a captured
// fixture under relay/salt/testdata/, or one a real master wrote), "" when
// it cannot be read.
#ifndef MUSTER_RELAY_SALT_TEST_FILES_H_
#define MUSTER_RELAY_SALT_TEST_FILES_H_

#include <fstream>
#include <sstream>
#include <string>

namespace muster::relay::salt {

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace muster::relay::salt

#endif  // MUSTER_RELAY_SALT_TEST_FILES_H_
