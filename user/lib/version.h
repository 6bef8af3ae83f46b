/* SPDX-License-Identifier: GPL-2.0 */
#ifndef VG_VERSION_H
#define VG_VERSION_H

#define VG_VERSION "0.1.0"

#endif
