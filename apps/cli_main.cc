// mica: the cluster's command line tool (apps/cli.h has the program).
#include "apps/cli.h"

int main(int argc, char** argv) {
  return mica::apps::cli_main(argc, argv);
}
