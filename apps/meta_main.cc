// mica-meta: a metadata server (apps/meta_process.h has the program).
#include "apps/meta_process.h"

int main(int argc, char** argv) {
  return mica::apps::meta_main(argc, argv);
}
