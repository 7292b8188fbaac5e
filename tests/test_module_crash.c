/*  Test module "crash": the echo module (tests/test_module_echo.c) plus
    the "crash" and "hang" requests, with which the kernel tests make a
    module's actor return or stop answering on command.  */
#define TEST_MODULE_CRASHABLE 1
#define TEST_MODULE_NAME "crash"
#include "test_module_echo.c"
