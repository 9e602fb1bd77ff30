// SPDX-License-Identifier: GPL-2.0
/* fakelinux's one C file, compiled with FAKE_CC = 1 (see the Makefile). */
int fakelinux_compiled = 1;
