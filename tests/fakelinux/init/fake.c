// SPDX-License-Identifier: GPL-2.0
/* fakelinux's one C file, compiled FAKE_CC times, as init/fake-N.o with -DFAKE_N=N (see the
 * Makefile): each object holds its N, so each is other bytes. */
int fakelinux_compiled = FAKE_N;
