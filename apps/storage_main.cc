// mica-storage: a storage server (apps/storage_process.h has the program).
#include "apps/storage_process.h"

int main(int argc, char** argv) {
  return mica::apps::storage_main(argc, argv);
}
