#include <amqp.h>
#include <stdio.h>
int main(void) { amqp_connection_state_t c = amqp_new_connection(); amqp_destroy_connection(c); puts("{}"); return 0; }
