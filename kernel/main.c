/* placeholder: replaced by the kernel's titand main */
int main (void) { return 0; }
