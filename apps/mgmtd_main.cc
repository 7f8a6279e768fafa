// mica-mgmtd: the cluster manager (apps/mgmtd_server.h has the program).
#include "apps/mgmtd_server.h"

int main(int argc, char** argv) {
  return mica::apps::mgmtd_main(argc, argv);
}
