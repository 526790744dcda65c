/*
 * SCSI definitions shared by the class drivers, the port drivers and the device server: operation
 * codes, status values, sense keys and additional sense codes, the fixed and descriptor sense
 * layouts, standard INQUIRY data, VPD pages, mode parameter headers and pages, READ CAPACITY data
 * and the CDB shapes, all under the names a Windows storage developer knows from scsi.h. Values
 * come from SPC-4, SBC-4, SAM-5 (and MMC/SSC/SMC where a name is shared). Everything on the wire
 * is big-endian: multi-byte fields are declared as UCHAR arrays where the Windows header does so,
 * and the few ULONG fields (READ_CAPACITY_DATA) hold big-endian bytes, not host values; use the
 * scsi_get_be / scsi_put_be helpers at the bottom to read and fill them. Bitfields are declared
 * least significant bit first; gcc and clang on little-endian x86-64 and arm64 lay them out as
 * MSVC does, and every structure's size is checked at compile time.
 */
#ifndef STORSTACK_STORAGE_SCSI_H
#define STORSTACK_STORAGE_SCSI_H

#include <storstack/nt/ntdef.h>

/* ---------------------------------------------------------------------------------------------
 * Operation codes (SPC-4 annex D, SBC-4 5, MMC-6, SSC-4, SMC-3)
 * --------------------------------------------------------------------------------------------- */

/* 6-byte CDBs */
#define SCSIOP_TEST_UNIT_READY     0x00
#define SCSIOP_REZERO_UNIT         0x01
#define SCSIOP_REWIND              0x01
#define SCSIOP_REQUEST_BLOCK_ADDR  0x02
#define SCSIOP_REQUEST_SENSE       0x03
#define SCSIOP_FORMAT_UNIT         0x04
#define SCSIOP_READ_BLOCK_LIMITS   0x05
#define SCSIOP_REASSIGN_BLOCKS     0x07
#define SCSIOP_INIT_ELEMENT_STATUS 0x07
#define SCSIOP_READ6               0x08
#define SCSIOP_RECEIVE             0x08
#define SCSIOP_WRITE6              0x0A
#define SCSIOP_PRINT               0x0A
#define SCSIOP_SEND                0x0A
#define SCSIOP_SEEK6               0x0B
#define SCSIOP_TRACK_SELECT        0x0B
#define SCSIOP_SLEW_PRINT          0x0B
#define SCSIOP_SET_CAPACITY        0x0B
#define SCSIOP_SEEK_BLOCK          0x0C
#define SCSIOP_PARTITION           0x0D
#define SCSIOP_READ_REVERSE        0x0F
#define SCSIOP_WRITE_FILEMARKS     0x10
#define SCSIOP_FLUSH_BUFFER        0x10
#define SCSIOP_SPACE               0x11
#define SCSIOP_INQUIRY             0x12
#define SCSIOP_VERIFY6             0x13
#define SCSIOP_RECOVER_BUF_DATA    0x14
#define SCSIOP_MODE_SELECT         0x15
#define SCSIOP_RESERVE_UNIT        0x16
#define SCSIOP_RELEASE_UNIT        0x17
#define SCSIOP_COPY                0x18
#define SCSIOP_ERASE               0x19
#define SCSIOP_MODE_SENSE          0x1A
#define SCSIOP_START_STOP_UNIT     0x1B
#define SCSIOP_STOP_PRINT          0x1B
#define SCSIOP_LOAD_UNLOAD         0x1B
#define SCSIOP_RECEIVE_DIAGNOSTIC  0x1C
#define SCSIOP_SEND_DIAGNOSTIC     0x1D
#define SCSIOP_MEDIUM_REMOVAL      0x1E

/* 10-byte CDBs */
#define SCSIOP_READ_FORMATTED_CAPACITY 0x23
#define SCSIOP_READ_CAPACITY           0x25
#define SCSIOP_READ                    0x28
#define SCSIOP_WRITE                   0x2A
#define SCSIOP_SEEK                    0x2B
#define SCSIOP_LOCATE                  0x2B
#define SCSIOP_POSITION_TO_ELEMENT     0x2B
#define SCSIOP_WRITE_VERIFY            0x2E
#define SCSIOP_VERIFY                  0x2F
#define SCSIOP_SEARCH_DATA_HIGH        0x30
#define SCSIOP_SEARCH_DATA_EQUAL       0x31
#define SCSIOP_SEARCH_DATA_LOW         0x32
#define SCSIOP_SET_LIMITS              0x33
#define SCSIOP_READ_POSITION           0x34
#define SCSIOP_SYNCHRONIZE_CACHE       0x35
#define SCSIOP_COMPARE                 0x39
#define SCSIOP_COPY_COMPARE            0x3A
#define SCSIOP_WRITE_DATA_BUFF         0x3B
#define SCSIOP_READ_DATA_BUFF          0x3C
#define SCSIOP_WRITE_LONG              0x3F
#define SCSIOP_CHANGE_DEFINITION       0x40
#define SCSIOP_WRITE_SAME              0x41
#define SCSIOP_READ_SUB_CHANNEL        0x42
#define SCSIOP_UNMAP                   0x42
#define SCSIOP_READ_TOC                0x43
#define SCSIOP_READ_HEADER             0x44
#define SCSIOP_REPORT_DENSITY_SUPPORT  0x44
#define SCSIOP_PLAY_AUDIO              0x45
#define SCSIOP_GET_CONFIGURATION       0x46
#define SCSIOP_PLAY_AUDIO_MSF          0x47
#define SCSIOP_GET_EVENT_STATUS        0x4A
#define SCSIOP_PAUSE_RESUME            0x4B
#define SCSIOP_LOG_SELECT              0x4C
#define SCSIOP_LOG_SENSE               0x4D
#define SCSIOP_STOP_PLAY_SCAN          0x4E
#define SCSIOP_XDWRITE                 0x50
#define SCSIOP_READ_DISK_INFORMATION   0x51
#define SCSIOP_READ_TRACK_INFORMATION  0x52
#define SCSIOP_RESERVE_TRACK_RZONE     0x53
#define SCSIOP_SEND_OPC_INFORMATION    0x54
#define SCSIOP_MODE_SELECT10           0x55
#define SCSIOP_RESERVE_UNIT10          0x56
#define SCSIOP_RESERVE_ELEMENT         0x56
#define SCSIOP_RELEASE_UNIT10          0x57
#define SCSIOP_RELEASE_ELEMENT         0x57
#define SCSIOP_REPAIR_TRACK            0x58
#define SCSIOP_MODE_SENSE10            0x5A
#define SCSIOP_CLOSE_TRACK_SESSION     0x5B
#define SCSIOP_READ_BUFFER_CAPACITY    0x5C
#define SCSIOP_SEND_CUE_SHEET          0x5D
#define SCSIOP_PERSISTENT_RESERVE_IN   0x5E
#define SCSIOP_PERSISTENT_RESERVE_OUT  0x5F

/* 16-byte CDBs */
#define SCSIOP_XDWRITE_EXTENDED16            0x80
#define SCSIOP_WRITE_FILEMARKS16             0x80
#define SCSIOP_REBUILD16                     0x81
#define SCSIOP_READ_REVERSE16                0x81
#define SCSIOP_REGENERATE16                  0x82
#define SCSIOP_EXTENDED_COPY                 0x83
#define SCSIOP_POPULATE_TOKEN                0x83
#define SCSIOP_WRITE_USING_TOKEN             0x83
#define SCSIOP_RECEIVE_COPY_RESULTS          0x84
#define SCSIOP_RECEIVE_ROD_TOKEN_INFORMATION 0x84
#define SCSIOP_ATA_PASSTHROUGH16             0x85
#define SCSIOP_ACCESS_CONTROL_IN             0x86
#define SCSIOP_ACCESS_CONTROL_OUT            0x87
#define SCSIOP_READ16                        0x88
#define SCSIOP_COMPARE_AND_WRITE             0x89
#define SCSIOP_WRITE16                       0x8A
#define SCSIOP_READ_ATTRIBUTES               0x8C
#define SCSIOP_WRITE_ATTRIBUTES              0x8D
#define SCSIOP_WRITE_VERIFY16                0x8E
#define SCSIOP_VERIFY16                      0x8F
#define SCSIOP_PREFETCH16                    0x90
#define SCSIOP_SYNCHRONIZE_CACHE16           0x91
#define SCSIOP_SPACE16                       0x91
#define SCSIOP_LOCK_UNLOCK_CACHE16           0x92
#define SCSIOP_LOCATE16                      0x92
#define SCSIOP_WRITE_SAME16                  0x93
#define SCSIOP_ERASE16                       0x93
#define SCSIOP_ZBC_OUT                       0x94
#define SCSIOP_ZBC_IN                        0x95
#define SCSIOP_READ_DATA_BUFF16              0x9B
#define SCSIOP_READ_CAPACITY16               0x9E
#define SCSIOP_GET_LBA_STATUS                0x9E
#define SCSIOP_GET_PHYSICAL_ELEMENT_STATUS   0x9E
#define SCSIOP_SERVICE_ACTION_IN16           0x9E
#define SCSIOP_SERVICE_ACTION_OUT16          0x9F

/* 12-byte CDBs */
#define SCSIOP_REPORT_LUNS                  0xA0
#define SCSIOP_BLANK                        0xA1
#define SCSIOP_ATA_PASSTHROUGH12            0xA1
#define SCSIOP_SEND_EVENT                   0xA2
#define SCSIOP_SECURITY_PROTOCOL_IN         0xA2
#define SCSIOP_SEND_KEY                     0xA3
#define SCSIOP_MAINTENANCE_IN               0xA3
#define SCSIOP_REPORT_KEY                   0xA4
#define SCSIOP_MAINTENANCE_OUT              0xA4
#define SCSIOP_MOVE_MEDIUM                  0xA5
#define SCSIOP_LOAD_UNLOAD_SLOT             0xA6
#define SCSIOP_EXCHANGE_MEDIUM              0xA6
#define SCSIOP_SET_READ_AHEAD               0xA7
#define SCSIOP_MOVE_MEDIUM_ATTACHED         0xA7
#define SCSIOP_READ12                       0xA8
#define SCSIOP_GET_MESSAGE                  0xA8
#define SCSIOP_SERVICE_ACTION_OUT12         0xA9
#define SCSIOP_WRITE12                      0xAA
#define SCSIOP_SEND_MESSAGE                 0xAB
#define SCSIOP_SERVICE_ACTION_IN12          0xAB
#define SCSIOP_GET_PERFORMANCE              0xAC
#define SCSIOP_READ_DVD_STRUCTURE           0xAD
#define SCSIOP_WRITE_VERIFY12               0xAE
#define SCSIOP_VERIFY12                     0xAF
#define SCSIOP_SEARCH_DATA_HIGH12           0xB0
#define SCSIOP_SEARCH_DATA_EQUAL12          0xB1
#define SCSIOP_SEARCH_DATA_LOW12            0xB2
#define SCSIOP_SET_LIMITS12                 0xB3
#define SCSIOP_READ_ELEMENT_STATUS_ATTACHED 0xB4
#define SCSIOP_REQUEST_VOL_ELEMENT          0xB5
#define SCSIOP_SECURITY_PROTOCOL_OUT        0xB5
#define SCSIOP_SEND_VOLUME_TAG              0xB6
#define SCSIOP_SET_STREAMING                0xB6
#define SCSIOP_READ_DEFECT_DATA             0xB7
#define SCSIOP_READ_ELEMENT_STATUS          0xB8
#define SCSIOP_READ_CD_MSF                  0xB9
#define SCSIOP_SCAN_CD                      0xBA
#define SCSIOP_REDUNDANCY_GROUP_IN          0xBA
#define SCSIOP_SET_CD_SPEED                 0xBB
#define SCSIOP_REDUNDANCY_GROUP_OUT         0xBB
#define SCSIOP_PLAY_CD                      0xBC
#define SCSIOP_SPARE_IN                     0xBC
#define SCSIOP_MECHANISM_STATUS             0xBD
#define SCSIOP_SPARE_OUT                    0xBD
#define SCSIOP_READ_CD                      0xBE
#define SCSIOP_VOLUME_SET_IN                0xBE
#define SCSIOP_SEND_DVD_STRUCTURE           0xBF
#define SCSIOP_VOLUME_SET_OUT               0xBF
#define SCSIOP_INIT_ELEMENT_RANGE           0xE7

/* Service actions of SERVICE ACTION IN(16) (SBC-4 5.x) */
#define SERVICE_ACTION_READ_CAPACITY16             0x10
#define SERVICE_ACTION_GET_LBA_STATUS              0x12
#define SERVICE_ACTION_GET_PHYSICAL_ELEMENT_STATUS 0x17

/* Service actions of MAINTENANCE IN (SPC-4 6.x) */
#define SERVICE_ACTION_REPORT_IDENTIFYING_INFORMATION             0x05
#define SERVICE_ACTION_REPORT_TARGET_PORT_GROUPS                  0x0A
#define SERVICE_ACTION_REPORT_SUPPORTED_OPERATION_CODES           0x0C
#define SERVICE_ACTION_REPORT_SUPPORTED_TASK_MANAGEMENT_FUNCTIONS 0x0D
#define SERVICE_ACTION_REPORT_TIMESTAMP                           0x0F

/* Service actions of EXTENDED COPY (83h) and RECEIVE COPY RESULTS (84h), SPC-4 6.4 / 6.18 */
#define SERVICE_ACTION_POPULATE_TOKEN            0x10
#define SERVICE_ACTION_WRITE_USING_TOKEN         0x11
#define SERVICE_ACTION_RECEIVE_TOKEN_INFORMATION 0x07

/* Bits in CDB byte 1 shared by several commands */
#define CDB_INQUIRY_EVPD       0x01 /* INQUIRY: return a VPD page */
#define CDB_FORCE_MEDIA_ACCESS 0x08 /* READ/WRITE(10,12,16): FUA */
#define CDB_DISABLE_PAGE_OUT   0x10 /* READ/WRITE(10,12,16): DPO */

/* ---------------------------------------------------------------------------------------------
 * Status (SAM-5 5.3)
 * --------------------------------------------------------------------------------------------- */

#define SCSISTAT_GOOD                  0x00
#define SCSISTAT_CHECK_CONDITION       0x02
#define SCSISTAT_CONDITION_MET         0x04
#define SCSISTAT_BUSY                  0x08
#define SCSISTAT_INTERMEDIATE          0x10
#define SCSISTAT_INTERMEDIATE_COND_MET 0x14
#define SCSISTAT_RESERVATION_CONFLICT  0x18
#define SCSISTAT_COMMAND_TERMINATED    0x22
#define SCSISTAT_QUEUE_FULL            0x28 /* TASK SET FULL in SAM-5 */
#define SCSISTAT_ACA_ACTIVE            0x30
#define SCSISTAT_TASK_ABORTED          0x40

/* ---------------------------------------------------------------------------------------------
 * Sense data (SPC-4 4.5)
 * --------------------------------------------------------------------------------------------- */

/* RESPONSE CODE, byte 0 bits 6..0 */
#define SCSI_SENSE_ERRORCODE_FIXED_CURRENT       0x70
#define SCSI_SENSE_ERRORCODE_FIXED_DEFERRED      0x71
#define SCSI_SENSE_ERRORCODE_DESCRIPTOR_CURRENT  0x72
#define SCSI_SENSE_ERRORCODE_DESCRIPTOR_DEFERRED 0x73

/* Fixed format sense data (SPC-4 4.5.3): 18 bytes when ADDITIONAL SENSE LENGTH is 10. */
typedef struct _SENSE_DATA {
    UCHAR ErrorCode : 7; /* 70h current, 71h deferred */
    UCHAR Valid : 1;     /* INFORMATION holds a meaningful value */
    UCHAR SegmentNumber; /* obsolete */
    UCHAR SenseKey : 4;
    UCHAR Reserved : 1;
    UCHAR IncorrectLength : 1; /* ILI */
    UCHAR EndOfMedia : 1;      /* EOM */
    UCHAR FileMark : 1;
    UCHAR Information[4];                /* big-endian */
    UCHAR AdditionalSenseLength;         /* bytes after this one */
    UCHAR CommandSpecificInformation[4]; /* big-endian */
    UCHAR AdditionalSenseCode;
    UCHAR AdditionalSenseCodeQualifier;
    UCHAR FieldReplaceableUnitCode;
    UCHAR SenseKeySpecific[3]; /* byte 15 bit 7 is SKSV */
} SENSE_DATA, *PSENSE_DATA;

#define SENSE_BUFFER_SIZE     18  /* sizeof(SENSE_DATA) */
#define SENSE_BUFFER_SIZE_EX  255 /* the largest sense data SPC-4 allows (8 + 247 additional) */
#define MAX_SENSE_BUFFER_SIZE 255

/* Descriptor format sense data (SPC-4 4.5.2): an 8-byte header, then descriptors. */
typedef struct _DESCRIPTOR_SENSE_DATA {
    UCHAR ErrorCode : 7; /* 72h current, 73h deferred */
    UCHAR Reserved1 : 1;
    UCHAR SenseKey : 4;
    UCHAR Reserved2 : 4;
    UCHAR AdditionalSenseCode;
    UCHAR AdditionalSenseCodeQualifier;
    UCHAR Reserved3[3];
    UCHAR AdditionalSenseLength; /* bytes of descriptors that follow */
    UCHAR DescriptorBuffer[];
} DESCRIPTOR_SENSE_DATA, *PDESCRIPTOR_SENSE_DATA;

/* Sense data descriptor types (SPC-4 4.5.2.1, table 29) */
#define SCSI_SENSE_DESCRIPTOR_TYPE_INFORMATION               0x00
#define SCSI_SENSE_DESCRIPTOR_TYPE_COMMAND_SPECIFIC          0x01
#define SCSI_SENSE_DESCRIPTOR_TYPE_SENSE_KEY_SPECIFIC        0x02
#define SCSI_SENSE_DESCRIPTOR_TYPE_FIELD_REPLACEABLE_UNIT    0x03
#define SCSI_SENSE_DESCRIPTOR_TYPE_STREAM_COMMAND            0x04
#define SCSI_SENSE_DESCRIPTOR_TYPE_BLOCK_COMMAND             0x05
#define SCSI_SENSE_DESCRIPTOR_TYPE_OSD_OBJECT_IDENTIFICATION 0x06
#define SCSI_SENSE_DESCRIPTOR_TYPE_ATA_STATUS                0x09
#define SCSI_SENSE_DESCRIPTOR_TYPE_PROGRESS_INDICATION       0x0A

/* Sense-key-specific bytes for ILLEGAL REQUEST (SPC-4 4.5.2.4.2): byte 0 flags, bytes 1-2 the
 * big-endian field pointer (the byte of the CDB or parameter list that is wrong). */
#define SCSI_SENSEKEY_SPECIFIC_SKSV 0x80 /* the sense-key-specific field is valid */
#define SCSI_SENSEKEY_SPECIFIC_CD   0x40 /* 1: the field is in the CDB; 0: in the data-out */
#define SCSI_SENSEKEY_SPECIFIC_BPV  0x08 /* the BIT POINTER (bits 2..0) is valid */

/* Sense keys (SPC-4 4.5.6, table 40) */
#define SCSI_SENSE_NO_SENSE        0x00
#define SCSI_SENSE_RECOVERED_ERROR 0x01
#define SCSI_SENSE_NOT_READY       0x02
#define SCSI_SENSE_MEDIUM_ERROR    0x03
#define SCSI_SENSE_HARDWARE_ERROR  0x04
#define SCSI_SENSE_ILLEGAL_REQUEST 0x05
#define SCSI_SENSE_UNIT_ATTENTION  0x06
#define SCSI_SENSE_DATA_PROTECT    0x07
#define SCSI_SENSE_BLANK_CHECK     0x08
#define SCSI_SENSE_UNIQUE          0x09 /* vendor specific */
#define SCSI_SENSE_COPY_ABORTED    0x0A
#define SCSI_SENSE_ABORTED_COMMAND 0x0B
#define SCSI_SENSE_EQUAL           0x0C /* obsolete */
#define SCSI_SENSE_VOL_OVERFLOW    0x0D
#define SCSI_SENSE_MISCOMPARE      0x0E
#define SCSI_SENSE_RESERVED        0x0F

/* Additional sense codes (SPC-4 4.5.6, table 41) */
#define SCSI_ADSENSE_NO_SENSE                              0x00
#define SCSI_ADSENSE_NO_SEEK_COMPLETE                      0x02
#define SCSI_ADSENSE_WRITE                                 0x03
#define SCSI_ADSENSE_LUN_NOT_READY                         0x04
#define SCSI_ADSENSE_LUN_COMMUNICATION                     0x08
#define SCSI_ADSENSE_SERVO_ERROR                           0x09
#define SCSI_ADSENSE_WARNING                               0x0B
#define SCSI_ADSENSE_WRITE_ERROR                           0x0C
#define SCSI_ADSENSE_COPY_TARGET_DEVICE_ERROR              0x0D
#define SCSI_ADSENSE_UNRECOVERED_ERROR                     0x11
#define SCSI_ADSENSE_TRACK_ERROR                           0x14
#define SCSI_ADSENSE_SEEK_ERROR                            0x15
#define SCSI_ADSENSE_REC_DATA_NOECC                        0x17
#define SCSI_ADSENSE_REC_DATA_ECC                          0x18
#define SCSI_ADSENSE_DEFECT_LIST_ERROR                     0x19
#define SCSI_ADSENSE_PARAMETER_LIST_LENGTH                 0x1A
#define SCSI_ADSENSE_MISCOMPARE_DURING_VERIFY_OPERATION    0x1D
#define SCSI_ADSENSE_ILLEGAL_COMMAND                       0x20
#define SCSI_ADSENSE_ACCESS_DENIED                         0x20
#define SCSI_ADSENSE_ILLEGAL_BLOCK                         0x21
#define SCSI_ADSENSE_INVALID_TOKEN                         0x23
#define SCSI_ADSENSE_INVALID_CDB                           0x24
#define SCSI_ADSENSE_INVALID_LUN                           0x25
#define SCSI_ADSENSE_INVALID_FIELD_PARAMETER_LIST          0x26
#define SCSI_ADSENSE_WRITE_PROTECT                         0x27
#define SCSI_ADSENSE_MEDIUM_CHANGED                        0x28
#define SCSI_ADSENSE_BUS_RESET                             0x29
#define SCSI_ADSENSE_PARAMETERS_CHANGED                    0x2A
#define SCSI_ADSENSE_COMMAND_SEQUENCE_ERROR                0x2C
#define SCSI_ADSENSE_INSUFFICIENT_TIME_FOR_OPERATION       0x2E
#define SCSI_ADSENSE_INVALID_MEDIA                         0x30
#define SCSI_ADSENSE_MEDIUM_FORMAT_CORRUPTED               0x31
#define SCSI_ADSENSE_DEFECT_MANAGEMENT                     0x32
#define SCSI_ADSENSE_ENCLOSURE_FAILURE                     0x34
#define SCSI_ADSENSE_ENCLOSURE_SERVICE                     0x35
#define SCSI_ADSENSE_ROUNDED_PARAMETER                     0x37
#define SCSI_ADSENSE_SAVING_PARAMETERS_NOT_SUPPORTED       0x39
#define SCSI_ADSENSE_NO_MEDIA_IN_DEVICE                    0x3A
#define SCSI_ADSENSE_POSITION_ERROR                        0x3B
#define SCSI_ADSENSE_LOGICAL_UNIT_ERROR                    0x3E
#define SCSI_ADSENSE_OPERATING_CONDITIONS_CHANGED          0x3F
#define SCSI_ADSENSE_DIAGNOSTIC_FAILURE                    0x40
#define SCSI_ADSENSE_INTERNAL_TARGET_FAILURE               0x44
#define SCSI_ADSENSE_DATA_PHASE_ERROR                      0x4B
#define SCSI_ADSENSE_LOGICAL_UNIT_COMMAND_FAILED           0x4C
#define SCSI_ADSENSE_OVERLAPPED_COMMANDS                   0x4E
#define SCSI_ADSENSE_MEDIA_LOAD_OR_EJECT_FAILED            0x53
#define SCSI_ADSENSE_SYSTEM_RESOURCE_FAILURE               0x55
#define SCSI_ADSENSE_OPERATOR_REQUEST                      0x5A
#define SCSI_ADSENSE_FAILURE_PREDICTION_THRESHOLD_EXCEEDED 0x5D
#define SCSI_ADSENSE_LOW_POWER_CONDITION_ON                0x5E
#define SCSI_ADSENSE_ILLEGAL_MODE_FOR_THIS_TRACK           0x64
#define SCSI_ADSENSE_COPY_PROTECTION_FAILURE               0x6F
#define SCSI_ADSENSE_POWER_CALIBRATION_AREA_ERROR          0x73
#define SCSI_ADSENSE_VENDOR_UNIQUE                         0x80

/* Additional sense code qualifiers, grouped by the code they qualify */
#define SCSI_SENSEQ_CAUSE_NOT_REPORTABLE                     0x00 /* 04h */
#define SCSI_SENSEQ_BECOMING_READY                           0x01 /* 04h */
#define SCSI_SENSEQ_INIT_COMMAND_REQUIRED                    0x02 /* 04h */
#define SCSI_SENSEQ_MANUAL_INTERVENTION_REQUIRED             0x03 /* 04h */
#define SCSI_SENSEQ_FORMAT_IN_PROGRESS                       0x04 /* 04h */
#define SCSI_SENSEQ_OPERATION_IN_PROGRESS                    0x07 /* 04h */
#define SCSI_SENSEQ_LONG_WRITE_IN_PROGRESS                   0x08 /* 04h */
#define SCSI_SENSEQ_UNAVAILABLE                              0x0C /* 04h: ALUA state unavailable */
#define SCSI_SENSEQ_UNRECOVERED_READ_ERROR                   0x00 /* 11h */
#define SCSI_SENSEQ_WRITE_ERROR                              0x00 /* 0Ch */
#define SCSI_SENSEQ_AUTO_REALLOCATION_FAILED                 0x02 /* 0Ch */
#define SCSI_SENSEQ_LBA_OUT_OF_RANGE                         0x00 /* 21h */
#define SCSI_SENSEQ_INVALID_ELEMENT_ADDRESS                  0x01 /* 21h */
#define SCSI_SENSEQ_PARAMETER_NOT_SUPPORTED                  0x01 /* 26h */
#define SCSI_SENSEQ_PARAMETER_VALUE_INVALID                  0x02 /* 26h */
#define SCSI_SENSEQ_WRITE_PROTECT                            0x00 /* 27h */
#define SCSI_SENSEQ_HARDWARE_WRITE_PROTECTED                 0x01 /* 27h */
#define SCSI_SENSEQ_SOFTWARE_WRITE_PROTECTED                 0x02 /* 27h */
#define SCSI_SENSEQ_SPACE_ALLOC_FAILED_WRITE_PROTECT         0x07 /* 27h */
#define SCSI_SENSEQ_POWER_ON_RESET                           0x00 /* 29h: power on, reset or BDR */
#define SCSI_SENSEQ_POWER_ON_OCCURRED                        0x01 /* 29h */
#define SCSI_SENSEQ_SCSI_BUS_RESET                           0x02 /* 29h */
#define SCSI_SENSEQ_BUS_DEVICE_RESET                         0x03 /* 29h */
#define SCSI_SENSEQ_DEVICE_INTERNAL_RESET                    0x04 /* 29h */
#define SCSI_SENSEQ_I_T_NEXUS_LOSS                           0x07 /* 29h */
#define SCSI_SENSEQ_MODE_PARAMETERS_CHANGED                  0x01 /* 2Ah */
#define SCSI_SENSEQ_RESERVATIONS_PREEMPTED                   0x03 /* 2Ah */
#define SCSI_SENSEQ_RESERVATIONS_RELEASED                    0x04 /* 2Ah */
#define SCSI_SENSEQ_REGISTRATIONS_PREEMPTED                  0x05 /* 2Ah */
#define SCSI_SENSEQ_ASYMMETRIC_ACCESS_STATE_CHANGED          0x06 /* 2Ah */
#define SCSI_SENSEQ_CAPACITY_DATA_CHANGED                    0x09 /* 2Ah */
#define SCSI_SENSEQ_SAVING_PARAMETERS_NOT_SUPPORTED          0x00 /* 39h */
#define SCSI_SENSEQ_MEDIUM_NOT_PRESENT                       0x00 /* 3Ah */
#define SCSI_SENSEQ_TARGET_OPERATING_CONDITIONS_CHANGED      0x00 /* 3Fh */
#define SCSI_SENSEQ_MICROCODE_CHANGED                        0x01 /* 3Fh */
#define SCSI_SENSEQ_OPERATING_DEFINITION_CHANGED             0x02 /* 3Fh */
#define SCSI_SENSEQ_INQUIRY_DATA_CHANGED                     0x03 /* 3Fh */
#define SCSI_SENSEQ_REPORTED_LUNS_DATA_CHANGED               0x0E /* 3Fh */
#define SCSI_SENSEQ_THIN_PROVISIONING_SOFT_THRESHOLD_REACHED 0x07 /* 38h */

/* ---------------------------------------------------------------------------------------------
 * Standard INQUIRY data (SPC-4 6.6.2)
 * --------------------------------------------------------------------------------------------- */

/* Peripheral device types (SPC-4 table 141) */
#define DIRECT_ACCESS_DEVICE              0x00 /* disk (SBC) */
#define SEQUENTIAL_ACCESS_DEVICE          0x01 /* tape (SSC) */
#define PRINTER_DEVICE                    0x02
#define PROCESSOR_DEVICE                  0x03
#define WRITE_ONCE_READ_MULTIPLE_DEVICE   0x04
#define READ_ONLY_DIRECT_ACCESS_DEVICE    0x05 /* CD/DVD (MMC) */
#define SCANNER_DEVICE                    0x06
#define OPTICAL_DEVICE                    0x07
#define MEDIUM_CHANGER                    0x08 /* SMC */
#define COMMUNICATION_DEVICE              0x09
#define ARRAY_CONTROLLER_DEVICE           0x0C
#define SCSI_ENCLOSURE_DEVICE             0x0D
#define REDUCED_BLOCK_DEVICE              0x0E
#define OPTICAL_CARD_READER_WRITER_DEVICE 0x0F
#define BRIDGE_CONTROLLER_DEVICE          0x10
#define OBJECT_BASED_STORAGE_DEVICE       0x11
#define HOST_MANAGED_ZONED_BLOCK_DEVICE   0x14
#define UNKNOWN_OR_NO_DEVICE              0x1F
#define LOGICAL_UNIT_NOT_PRESENT_DEVICE   0x7F /* byte 0 of an absent LUN: qualifier 3, type 1Fh */

/* Peripheral qualifiers */
#define DEVICE_QUALIFIER_ACTIVE        0x00
#define DEVICE_QUALIFIER_NOT_ACTIVE    0x01
#define DEVICE_QUALIFIER_NOT_SUPPORTED 0x03

/* VERSION values */
#define SCSI_VERSION_SPC2 0x04
#define SCSI_VERSION_SPC3 0x05
#define SCSI_VERSION_SPC4 0x06
#define SCSI_VERSION_SPC5 0x07

/* The first 36 bytes of standard INQUIRY data: what every initiator asks for. */
typedef struct _INQUIRYDATA {
    UCHAR DeviceType : 5;
    UCHAR DeviceTypeQualifier : 3;
    UCHAR DeviceTypeModifier : 7;
    UCHAR RemovableMedia : 1; /* RMB */
    union {
        UCHAR Versions; /* VERSION: 06h claims SPC-4 */
        struct {
            UCHAR ANSIVersion : 3;
            UCHAR ECMAVersion : 3;
            UCHAR ISOVersion : 2;
        };
    };
    UCHAR ResponseDataFormat : 4; /* always 2 */
    UCHAR HiSupport : 1;
    UCHAR NormACA : 1;
    UCHAR TerminateTask : 1; /* obsolete */
    UCHAR AERC : 1;          /* obsolete */
    UCHAR AdditionalLength;  /* bytes after byte 4 */
    union {
        UCHAR Reserved;
        struct {
            UCHAR PROTECT : 1;
            UCHAR Reserved_1 : 2;
            UCHAR ThirdPartyCoppy : 1; /* 3PC (the Windows spelling) */
            UCHAR TPGS : 2;
            UCHAR ACC : 1;
            UCHAR SCCS : 1;
        };
    };
    UCHAR Addr16 : 1;
    UCHAR Addr32 : 1;
    UCHAR AckReqQ : 1;
    UCHAR MediumChanger : 1;
    UCHAR MultiPort : 1;
    UCHAR ReservedBit2 : 1;
    UCHAR EnclosureServices : 1;
    UCHAR ReservedBit3 : 1;
    UCHAR SoftReset : 1;
    UCHAR CommandQueue : 1; /* CMDQUE */
    UCHAR TransferDisable : 1;
    UCHAR LinkedCommands : 1;
    UCHAR Synchronous : 1;
    UCHAR Wide16Bit : 1;
    UCHAR Wide32Bit : 1;
    UCHAR RelativeAddressing : 1;
    UCHAR VendorId[8];             /* ASCII, space padded */
    UCHAR ProductId[16];           /* ASCII, space padded */
    UCHAR ProductRevisionLevel[4]; /* ASCII, space padded */
} INQUIRYDATA, *PINQUIRYDATA;

#define INQUIRYDATABUFFERSIZE 36

/* ---------------------------------------------------------------------------------------------
 * Vital product data pages (SPC-4 7.8, SBC-4 6.6)
 * --------------------------------------------------------------------------------------------- */

#define VPD_MAX_BUFFER_SIZE                    0xFF
#define VPD_SUPPORTED_PAGES                    0x00
#define VPD_SERIAL_NUMBER                      0x80
#define VPD_GENERIC_DEVICE                     0x81
#define VPD_DEVICE_IDENTIFIERS                 0x83
#define VPD_SOFTWARE_INTERFACE_IDENTIFIERS     0x84
#define VPD_NETWORK_MANAGEMENT_ADDRESSES       0x85
#define VPD_EXTENDED_INQUIRY_DATA              0x86
#define VPD_MODE_PAGE_POLICY                   0x87
#define VPD_SCSI_PORTS                         0x88
#define VPD_ATA_INFORMATION                    0x89
#define VPD_THIRD_PARTY_COPY                   0x8F
#define VPD_BLOCK_LIMITS                       0xB0
#define VPD_BLOCK_DEVICE_CHARACTERISTICS       0xB1
#define VPD_LOGICAL_BLOCK_PROVISIONING         0xB2
#define VPD_ZONED_BLOCK_DEVICE_CHARACTERISTICS 0xB6

/* CODE SET of a designation descriptor */
typedef enum _VPD_CODE_SET {
    VpdCodeSetReserved = 0,
    VpdCodeSetBinary = 1,
    VpdCodeSetAscii = 2,
    VpdCodeSetUTF8 = 3,
} VPD_CODE_SET,
    *PVPD_CODE_SET;

/* ASSOCIATION of a designation descriptor */
typedef enum _VPD_ASSOCIATION {
    VpdAssocDevice = 0, /* the logical unit */
    VpdAssocPort = 1,   /* the target port that received the INQUIRY */
    VpdAssocTarget = 2, /* the SCSI target device */
    VpdAssocReserved1 = 3,
    VpdAssocReserved2 = 4,
} VPD_ASSOCIATION,
    *PVPD_ASSOCIATION;

/* DESIGNATOR TYPE of a designation descriptor (SPC-4 table 459) */
typedef enum _VPD_IDENTIFIER_TYPE {
    VpdIdentifierTypeVendorSpecific = 0,
    VpdIdentifierTypeVendorId = 1, /* T10 vendor ID based */
    VpdIdentifierTypeEUI64 = 2,
    VpdIdentifierTypeFCPHName = 3, /* NAA */
    VpdIdentifierTypePortRelative = 4,
    VpdIdentifierTypeTargetPortGroup = 5,
    VpdIdentifierTypeLogicalUnitGroup = 6,
    VpdIdentifierTypeMD5LogicalUnitId = 7,
    VpdIdentifierTypeSCSINameString = 8,
} VPD_IDENTIFIER_TYPE,
    *PVPD_IDENTIFIER_TYPE;

/* NAA field values (the high nibble of an NAA designator) */
#define NAA_IEEE_EXTENDED            0x2
#define NAA_LOCALLY_ASSIGNED         0x3
#define NAA_IEEE_REGISTERED          0x5
#define NAA_IEEE_REGISTERED_EXTENDED 0x6

/* One designation descriptor; IdentifierLength bytes of Identifier follow the 4-byte header. */
typedef struct _VPD_IDENTIFICATION_DESCRIPTOR {
    UCHAR CodeSet : 4;        /* VPD_CODE_SET */
    UCHAR Reserved : 4;       /* PROTOCOL IDENTIFIER in SPC-4 */
    UCHAR IdentifierType : 4; /* VPD_IDENTIFIER_TYPE */
    UCHAR Association : 2;    /* VPD_ASSOCIATION */
    UCHAR Reserved2 : 2;      /* bit 7 is PIV in SPC-4 */
    UCHAR Reserved3;
    UCHAR IdentifierLength;
    UCHAR Identifier[];
} VPD_IDENTIFICATION_DESCRIPTOR, *PVPD_IDENTIFICATION_DESCRIPTOR;

/* Page 83h: a 4-byte header, then PageLength bytes of designation descriptors. */
typedef struct _VPD_IDENTIFICATION_PAGE {
    UCHAR DeviceType : 5;
    UCHAR DeviceTypeQualifier : 3;
    UCHAR PageCode;
    UCHAR Reserved; /* PAGE LENGTH bits 15..8 in SPC-4 */
    UCHAR PageLength;
    UCHAR Descriptors[];
} VPD_IDENTIFICATION_PAGE, *PVPD_IDENTIFICATION_PAGE;

/* Page 00h */
typedef struct _VPD_SUPPORTED_PAGES_PAGE {
    UCHAR DeviceType : 5;
    UCHAR DeviceTypeQualifier : 3;
    UCHAR PageCode;
    UCHAR Reserved;
    UCHAR PageLength;
    UCHAR SupportedPageList[];
} VPD_SUPPORTED_PAGES_PAGE, *PVPD_SUPPORTED_PAGES_PAGE;

/* Page 80h */
typedef struct _VPD_SERIAL_NUMBER_PAGE {
    UCHAR DeviceType : 5;
    UCHAR DeviceTypeQualifier : 3;
    UCHAR PageCode;
    UCHAR Reserved;
    UCHAR PageLength;
    UCHAR SerialNumber[];
} VPD_SERIAL_NUMBER_PAGE, *PVPD_SERIAL_NUMBER_PAGE;

/* Page B0h (SBC-4 6.6.4): 64 bytes, PAGE LENGTH 3Ch. All counts are in logical blocks. */
typedef struct _VPD_BLOCK_LIMITS_PAGE {
    UCHAR DeviceType : 5;
    UCHAR DeviceTypeQualifier : 3;
    UCHAR PageCode;
    UCHAR PageLength[2];
    UCHAR Reserved0; /* bit 0 is WSNZ */
    UCHAR MaximumCompareAndWriteLength;
    UCHAR OptimalTransferLengthGranularity[2];
    UCHAR MaximumTransferLength[4];
    UCHAR OptimalTransferLength[4];
    UCHAR MaxPrefetchXDReadXDWriteTransferLength[4];
    UCHAR MaximumUnmapLBACount[4];
    UCHAR MaximumUnmapBlockDescriptorCount[4];
    UCHAR OptimalUnmapGranularity[4];
    UCHAR UnmapGranularityAlignment[4]; /* bit 7 of the first byte is UGAVALID */
    UCHAR MaxWriteSameLength[8];
    UCHAR MaximumAtomicTransferLength[4];
    UCHAR AtomicAlignment[4];
    UCHAR AtomicTransferLengthGranularity[4];
    UCHAR Reserved1[8];
} VPD_BLOCK_LIMITS_PAGE, *PVPD_BLOCK_LIMITS_PAGE;

/* Page B1h (SBC-4 6.6.2): 64 bytes, PAGE LENGTH 3Ch. */
typedef struct _VPD_BLOCK_DEVICE_CHARACTERISTICS_PAGE {
    UCHAR DeviceType : 5;
    UCHAR DeviceTypeQualifier : 3;
    UCHAR PageCode;
    UCHAR Reserved0;
    UCHAR PageLength;
    UCHAR MediumRotationRateMsb; /* 0001h: non-rotating (solid state) */
    UCHAR MediumRotationRateLsb;
    UCHAR MediumProductType;
    UCHAR NominalFormFactor : 4;
    UCHAR Reserved1 : 4;
    UCHAR Reserved2[56];
} VPD_BLOCK_DEVICE_CHARACTERISTICS_PAGE, *PVPD_BLOCK_DEVICE_CHARACTERISTICS_PAGE;

/* Page B2h (SBC-4 6.6.6): the first 8 bytes (no provisioning group descriptor). */
typedef struct _VPD_LOGICAL_BLOCK_PROVISIONING_PAGE {
    UCHAR DeviceType : 5;
    UCHAR DeviceTypeQualifier : 3;
    UCHAR PageCode;
    UCHAR PageLength[2];
    UCHAR ThresholdExponent;
    UCHAR DP : 1;
    UCHAR ANC_SUP : 1;
    UCHAR LBPRZ : 1;
    UCHAR Reserved0 : 2;
    UCHAR LBPWS10 : 1;
    UCHAR LBPWS : 1;
    UCHAR LBPU : 1;
    UCHAR ProvisioningType : 3;
    UCHAR Reserved1 : 5;
    UCHAR Reserved2;
} VPD_LOGICAL_BLOCK_PROVISIONING_PAGE, *PVPD_LOGICAL_BLOCK_PROVISIONING_PAGE;

#define PROVISIONING_TYPE_UNKNOWN  0x0
#define PROVISIONING_TYPE_RESOURCE 0x1
#define PROVISIONING_TYPE_THIN     0x2

/* ---------------------------------------------------------------------------------------------
 * READ CAPACITY data (SBC-4 5.15, 5.16)
 * --------------------------------------------------------------------------------------------- */

/* READ CAPACITY(10) parameter data. Both fields are BIG-ENDIAN on the wire: read them with
 * scsi_get_be32(), not as host integers. LogicalBlockAddress is the LAST LBA (capacity - 1), or
 * FFFFFFFFh when that does not fit and READ CAPACITY(16) must be used. */
typedef struct _READ_CAPACITY_DATA {
    ULONG LogicalBlockAddress;
    ULONG BytesPerBlock;
} READ_CAPACITY_DATA, *PREAD_CAPACITY_DATA;

/* The first 12 bytes of READ CAPACITY(16) data; big-endian on the wire as above. */
#pragma pack(push, 1)
typedef struct _READ_CAPACITY_DATA_EX {
    LARGE_INTEGER LogicalBlockAddress;
    ULONG BytesPerBlock;
} READ_CAPACITY_DATA_EX, *PREAD_CAPACITY_DATA_EX;

/* Full READ CAPACITY(16) parameter data (32 bytes). */
typedef struct _READ_CAPACITY16_DATA {
    LARGE_INTEGER LogicalBlockAddress; /* big-endian */
    ULONG BytesPerBlock;               /* big-endian */
    UCHAR ProtectionEnable : 1;
    UCHAR ProtectionType : 3;
    UCHAR RcBasis : 2;
    UCHAR Reserved : 2;
    UCHAR LogicalPerPhysicalExponent : 4;
    UCHAR ProtectionInfoExponent : 4;
    UCHAR LowestAlignedBlock_MSB : 6;
    UCHAR LBPRZ : 1;
    UCHAR LBPME : 1;
    UCHAR LowestAlignedBlock_LSB;
    UCHAR Reserved3[16];
} READ_CAPACITY16_DATA, *PREAD_CAPACITY16_DATA;
#pragma pack(pop)

/* ---------------------------------------------------------------------------------------------
 * REPORT LUNS (SPC-4 6.33)
 * --------------------------------------------------------------------------------------------- */

#define SCSI_REPORT_LUNS_SELECT_ALL_LOGICAL_UNITS 0x00
#define SCSI_REPORT_LUNS_SELECT_WELL_KNOWN_ONLY   0x01
#define SCSI_REPORT_LUNS_SELECT_ALL_ACCESSIBLE    0x02

/* An 8-byte header, then one 8-byte LUN per entry; LunListLength counts the entry bytes. */
typedef struct _LUN_LIST {
    UCHAR LunListLength[4]; /* big-endian */
    UCHAR Reserved[4];
    UCHAR Lun[][8];
} LUN_LIST, *PLUN_LIST;

/* ---------------------------------------------------------------------------------------------
 * Mode parameters (SPC-4 7.5, SBC-4 6.5)
 * --------------------------------------------------------------------------------------------- */

/* Mode parameter header for MODE SENSE(6) / MODE SELECT(6) */
typedef struct _MODE_PARAMETER_HEADER {
    UCHAR ModeDataLength; /* bytes after this one; reserved in MODE SELECT */
    UCHAR MediumType;
    UCHAR DeviceSpecificParameter;
    UCHAR BlockDescriptorLength;
} MODE_PARAMETER_HEADER, *PMODE_PARAMETER_HEADER;

/* Mode parameter header for MODE SENSE(10) / MODE SELECT(10) */
typedef struct _MODE_PARAMETER_HEADER10 {
    UCHAR ModeDataLength[2]; /* big-endian */
    UCHAR MediumType;
    UCHAR DeviceSpecificParameter;
    UCHAR Reserved[2]; /* byte 4 bit 0 is LONGLBA */
    UCHAR BlockDescriptorLength[2];
} MODE_PARAMETER_HEADER10, *PMODE_PARAMETER_HEADER10;

/* DEVICE-SPECIFIC PARAMETER of a direct-access device (SBC-4 6.5.1) */
#define MODE_DSP_FUA_SUPPORTED 0x10 /* DPOFUA */
#define MODE_DSP_WRITE_PROTECT 0x80 /* WP */

/* Short LBA mode parameter block descriptor (SBC-4 6.5.2.2) */
typedef struct _MODE_PARAMETER_BLOCK {
    UCHAR DensityCode;       /* NUMBER OF BLOCKS bits 31..24 for a direct-access device */
    UCHAR NumberOfBlocks[3]; /* big-endian; FFFFFFh when the capacity does not fit */
    UCHAR Reserved;
    UCHAR BlockLength[3]; /* big-endian */
} MODE_PARAMETER_BLOCK, *PMODE_PARAMETER_BLOCK;

/* Page codes */
#define MODE_PAGE_VENDOR_SPECIFIC               0x00
#define MODE_PAGE_ERROR_RECOVERY                0x01
#define MODE_PAGE_DISCONNECT                    0x02
#define MODE_PAGE_FORMAT_DEVICE                 0x03
#define MODE_PAGE_MRW                           0x03
#define MODE_PAGE_RIGID_GEOMETRY                0x04
#define MODE_PAGE_FLEXIBILE                     0x05 /* the Windows spelling */
#define MODE_PAGE_WRITE_PARAMETERS              0x05
#define MODE_PAGE_VERIFY_ERROR                  0x07
#define MODE_PAGE_CACHING                       0x08
#define MODE_PAGE_PERIPHERAL                    0x09
#define MODE_PAGE_CONTROL                       0x0A
#define MODE_PAGE_MEDIUM_TYPES                  0x0B
#define MODE_PAGE_NOTCH_PARTITION               0x0C
#define MODE_PAGE_CD_AUDIO_CONTROL              0x0E
#define MODE_PAGE_DATA_COMPRESS                 0x0F
#define MODE_PAGE_DEVICE_CONFIG                 0x10
#define MODE_PAGE_XOR_CONTROL                   0x10
#define MODE_PAGE_MEDIUM_PARTITION              0x11
#define MODE_PAGE_ENCLOSURE_SERVICES_MANAGEMENT 0x14
#define MODE_PAGE_EXTENDED                      0x15
#define MODE_PAGE_EXTENDED_DEVICE_SPECIFIC      0x16
#define MODE_PAGE_CDVD_FEATURE_SET              0x18
#define MODE_PAGE_PROTOCOL_SPECIFIC_LUN         0x18
#define MODE_PAGE_PROTOCOL_SPECIFIC_PORT        0x19
#define MODE_PAGE_POWER_CONDITION               0x1A
#define MODE_PAGE_LUN_MAPPING                   0x1B
#define MODE_PAGE_FAULT_REPORTING               0x1C
#define MODE_PAGE_CDVD_INACTIVITY               0x1D
#define MODE_PAGE_ELEMENT_ADDRESS               0x1D
#define MODE_PAGE_TRANSPORT_GEOMETRY            0x1E
#define MODE_PAGE_DEVICE_CAPABILITIES           0x1F
#define MODE_PAGE_CAPABILITIES                  0x2A
#define MODE_SENSE_RETURN_ALL                   0x3F

/* PC field of MODE SENSE, already shifted into CDB byte 2 bits 7..6 */
#define MODE_SENSE_CURRENT_VALUES    0x00
#define MODE_SENSE_CHANGEABLE_VALUES 0x40
#define MODE_SENSE_DEFAULT_VALUES    0x80
#define MODE_SENSE_DEFAULT_VAULES    MODE_SENSE_DEFAULT_VALUES /* the Windows spelling */
#define MODE_SENSE_SAVED_VALUES      0xC0

/* MODE SELECT byte 1 bits */
#define MODE_SELECT_SAVE_PAGES  0x01 /* SP */
#define MODE_SELECT_PAGE_FORMAT 0x10 /* PF */

/* Caching mode page (SBC-4 6.5.5), first 12 bytes; the page is 20 bytes (PageLength 12h) in
 * SBC-4, the rest being the FSW/LBCSS/DRA bits, the cache segment count and size. */
typedef struct _MODE_CACHING_PAGE {
    UCHAR PageCode : 6;
    UCHAR Reserved : 1;
    UCHAR PageSavable : 1; /* PS */
    UCHAR PageLength;
    UCHAR ReadDisableCache : 1;     /* RCD */
    UCHAR MultiplicationFactor : 1; /* MF */
    UCHAR WriteCacheEnable : 1;     /* WCE */
    UCHAR Reserved2 : 5;
    UCHAR WriteRetensionPriority : 4;
    UCHAR ReadRetensionPriority : 4;
    UCHAR DisablePrefetchTransfer[2];
    UCHAR MinimumPrefetch[2];
    UCHAR MaximumPrefetch[2];
    UCHAR MaximumPrefetchCeiling[2];
} MODE_CACHING_PAGE, *PMODE_CACHING_PAGE;

#define MODE_CACHING_PAGE_LENGTH_SBC 0x12 /* PAGE LENGTH of the full SBC-4 caching page */
#define MODE_CONTROL_PAGE_LENGTH     0x0A /* PAGE LENGTH of the control page (SPC-4 7.5.8) */

/* Control mode page byte 2 bits (SPC-4 7.5.8) */
#define MODE_CONTROL_D_SENSE 0x04 /* report sense data in descriptor format */
#define MODE_CONTROL_GLTSD   0x02
#define MODE_CONTROL_RLEC    0x01

/* ---------------------------------------------------------------------------------------------
 * Command descriptor blocks
 * --------------------------------------------------------------------------------------------- */

#define CDB6GENERIC_LENGTH  6
#define CDB10GENERIC_LENGTH 10
#define CDB12GENERIC_LENGTH 12
#define CDB16GENERIC_LENGTH 16

/* CONTROL byte (SAM-5 5.2) */
#define CDB_CONTROL_NACA 0x04

typedef union _CDB {
    struct _CDB6GENERIC {
        UCHAR OperationCode;
        UCHAR Immediate : 1;
        UCHAR CommandUniqueBits : 4;
        UCHAR LogicalUnitNumber : 3;
        UCHAR CommandUniqueBytes[3];
        UCHAR Link : 1;
        UCHAR Flag : 1;
        UCHAR Reserved : 4;
        UCHAR VendorUnique : 2;
    } CDB6GENERIC;

    /* READ(6) / WRITE(6): a 21-bit LBA; TRANSFER LENGTH 0 means 256 blocks (SBC-4 5.13) */
    struct _CDB6READWRITE {
        UCHAR OperationCode;
        UCHAR LogicalBlockMsb1 : 5;
        UCHAR LogicalUnitNumber : 3;
        UCHAR LogicalBlockMsb0;
        UCHAR LogicalBlockLsb;
        UCHAR TransferBlocks;
        UCHAR Control;
    } CDB6READWRITE;

    struct _CDB6INQUIRY {
        UCHAR OperationCode;
        UCHAR Reserved1 : 5;
        UCHAR LogicalUnitNumber : 3;
        UCHAR PageCode;
        UCHAR IReserved;
        UCHAR AllocationLength;
        UCHAR Control;
    } CDB6INQUIRY;

    /* INQUIRY as SPC-3 and later define it: a 16-bit ALLOCATION LENGTH in bytes 3-4 */
    struct _CDB6INQUIRY3 {
        UCHAR OperationCode;
        UCHAR EnableVitalProductData : 1; /* EVPD */
        UCHAR CommandSupportData : 1;     /* obsolete CmdDt */
        UCHAR Reserved1 : 6;
        UCHAR PageCode;
        UCHAR Reserved2; /* ALLOCATION LENGTH bits 15..8 */
        UCHAR AllocationLength;
        UCHAR Control;
    } CDB6INQUIRY3;

    struct _CDB6VERIFY {
        UCHAR OperationCode;
        UCHAR Fixed : 1;
        UCHAR ByteCompare : 1;
        UCHAR Immediate : 1;
        UCHAR Reserved : 2;
        UCHAR LogicalUnitNumber : 3;
        UCHAR VerificationLength[3];
        UCHAR Control;
    } CDB6VERIFY;

    struct _CDB6FORMAT {
        UCHAR OperationCode;
        UCHAR FormatControl : 5;
        UCHAR LogicalUnitNumber : 3;
        UCHAR FReserved1;
        UCHAR InterleaveMsb;
        UCHAR InterleaveLsb;
        UCHAR FReserved2;
    } CDB6FORMAT;

    /* READ(10) / WRITE(10) / VERIFY(10) and other 10-byte block commands */
    struct _CDB10 {
        UCHAR OperationCode;
        UCHAR RelativeAddress : 1;
        UCHAR Reserved1 : 2;
        UCHAR ForceUnitAccess : 1;
        UCHAR DisablePageOut : 1;
        UCHAR LogicalUnitNumber : 3; /* RDPROTECT / WRPROTECT in SBC-4 */
        UCHAR LogicalBlockByte0;     /* most significant */
        UCHAR LogicalBlockByte1;
        UCHAR LogicalBlockByte2;
        UCHAR LogicalBlockByte3;
        UCHAR Reserved2; /* GROUP NUMBER */
        UCHAR TransferBlocksMsb;
        UCHAR TransferBlocksLsb;
        UCHAR Control;
    } CDB10;

    struct _CDB12 {
        UCHAR OperationCode;
        UCHAR RelativeAddress : 1;
        UCHAR Reserved1 : 2;
        UCHAR ForceUnitAccess : 1;
        UCHAR DisablePageOut : 1;
        UCHAR LogicalUnitNumber : 3;
        UCHAR LogicalBlock[4];   /* big-endian */
        UCHAR TransferLength[4]; /* big-endian */
        UCHAR Reserved2;
        UCHAR Control;
    } CDB12;

    struct _CDB16 {
        UCHAR OperationCode;
        UCHAR Reserved1 : 3;
        UCHAR ForceUnitAccess : 1;
        UCHAR DisablePageOut : 1;
        UCHAR Protection : 3;
        UCHAR LogicalBlock[8];   /* big-endian */
        UCHAR TransferLength[4]; /* big-endian */
        UCHAR Reserved2;
        UCHAR Control;
    } CDB16;

    struct _MODE_SENSE {
        UCHAR OperationCode;
        UCHAR Reserved1 : 3;
        UCHAR Dbd : 1; /* disable block descriptors */
        UCHAR Reserved2 : 1;
        UCHAR LogicalUnitNumber : 3;
        UCHAR PageCode : 6;
        UCHAR Pc : 2; /* page control: current, changeable, default, saved */
        UCHAR SubPageCode;
        UCHAR AllocationLength;
        UCHAR Control;
    } MODE_SENSE;

    struct _MODE_SENSE10 {
        UCHAR OperationCode;
        UCHAR Reserved1 : 3;
        UCHAR Dbd : 1;
        UCHAR LongLBAAccepted : 1;
        UCHAR LogicalUnitNumber : 3;
        UCHAR PageCode : 6;
        UCHAR Pc : 2;
        UCHAR SubPageCode;
        UCHAR Reserved3[3];
        UCHAR AllocationLength[2]; /* big-endian */
        UCHAR Control;
    } MODE_SENSE10;

    struct _MODE_SELECT {
        UCHAR OperationCode;
        UCHAR SPBit : 1; /* save pages */
        UCHAR Reserved1 : 3;
        UCHAR PFBit : 1; /* page format */
        UCHAR LogicalUnitNumber : 3;
        UCHAR Reserved2[2];
        UCHAR ParameterListLength;
        UCHAR Control;
    } MODE_SELECT;

    struct _MODE_SELECT10 {
        UCHAR OperationCode;
        UCHAR SPBit : 1;
        UCHAR Reserved1 : 3;
        UCHAR PFBit : 1;
        UCHAR LogicalUnitNumber : 3;
        UCHAR Reserved2[5];
        UCHAR ParameterListLength[2]; /* big-endian */
        UCHAR Control;
    } MODE_SELECT10;

    /* START STOP UNIT (SBC-4 5.25) */
    struct _START_STOP {
        UCHAR OperationCode;
        UCHAR Immediate : 1;
        UCHAR Reserved1 : 4;
        UCHAR LogicalUnitNumber : 3;
        UCHAR Reserved2;
        UCHAR PowerConditionModifier : 4;
        UCHAR Reserved2b : 4;
        UCHAR Start : 1;
        UCHAR LoadEject : 1;
        UCHAR NoFlush : 1;
        UCHAR Reserved3 : 1;
        UCHAR PowerConditions : 4;
        UCHAR Control;
    } START_STOP;

    struct _MEDIA_REMOVAL {
        UCHAR OperationCode;
        UCHAR Reserved1 : 5;
        UCHAR LogicalUnitNumber : 3;
        UCHAR Reserved2[2];
        UCHAR Prevent : 1;
        UCHAR Persistant : 1; /* the Windows spelling */
        UCHAR Reserved3 : 6;
        UCHAR Control;
    } MEDIA_REMOVAL;

    /* SYNCHRONIZE CACHE(10) (SBC-4 5.28) */
    struct _SYNCHRONIZE_CACHE10 {
        UCHAR OperationCode;
        UCHAR RelAddr : 1;
        UCHAR Immediate : 1;
        UCHAR Reserved : 3; /* bit 2 is SYNC_NV (obsolete) */
        UCHAR Lun : 3;
        UCHAR LogicalBlockAddress[4]; /* big-endian */
        UCHAR Reserved2;              /* GROUP NUMBER */
        UCHAR BlockCount[2];          /* big-endian; 0 means to the end of the medium */
        UCHAR Control;
    } SYNCHRONIZE_CACHE10;

    /* SYNCHRONIZE CACHE(16) (SBC-4 5.29) */
    struct _SYNCHRONIZE_CACHE16 {
        UCHAR OperationCode;
        UCHAR Reserved1 : 1;
        UCHAR Immediate : 1;
        UCHAR Reserved2 : 6;
        UCHAR LogicalBlock[8]; /* big-endian */
        UCHAR BlockCount[4];   /* big-endian */
        UCHAR Reserved3;
        UCHAR Control;
    } SYNCHRONIZE_CACHE16;

    /* SERVICE ACTION IN(16) / READ CAPACITY(16) (SBC-4 5.16) */
    struct _READ_CAPACITY16 {
        UCHAR OperationCode;
        UCHAR ServiceAction : 5;
        UCHAR Reserved1 : 3;
        UCHAR LogicalBlock[8]; /* obsolete */
        UCHAR BlockCount[4];   /* ALLOCATION LENGTH, big-endian */
        UCHAR PMI : 1;         /* obsolete */
        UCHAR Reserved2 : 7;
        UCHAR Control;
    } READ_CAPACITY16;

    /* REPORT LUNS (SPC-4 6.33) */
    struct _REPORT_LUNS {
        UCHAR OperationCode;
        UCHAR Reserved1;
        UCHAR SelectReport;
        UCHAR Reserved2[3];
        UCHAR AllocationLength[4]; /* big-endian; at least 16 */
        UCHAR Reserved3;
        UCHAR Control;
    } REPORT_LUNS;

    /* REQUEST SENSE (SPC-4 6.39) */
    struct _REQUEST_SENSE {
        UCHAR OperationCode;
        UCHAR DescriptorFormat : 1; /* DESC */
        UCHAR Reserved1 : 7;
        UCHAR Reserved2[2];
        UCHAR AllocationLength;
        UCHAR Control;
    } REQUEST_SENSE;

    /* MAINTENANCE IN / REPORT SUPPORTED OPERATION CODES (SPC-4 6.35) */
    struct _REPORT_SUPPORTED_OPERATION_CODES {
        UCHAR OperationCode;
        UCHAR ServiceAction : 5;
        UCHAR Reserved1 : 3;
        UCHAR ReportingOptions : 3;
        UCHAR Reserved2 : 4;
        UCHAR RCTD : 1;
        UCHAR RequestedOperationCode;
        UCHAR RequestedServiceAction[2];
        UCHAR AllocationLength[4];
        UCHAR Reserved3;
        UCHAR Control;
    } REPORT_SUPPORTED_OPERATION_CODES;

    UCHAR AsByte[16];
    ULONG AsUlong[4];
} CDB, *PCDB;

/* ---------------------------------------------------------------------------------------------
 * Big-endian helpers: SCSI puts every multi-byte field most significant byte first.
 * --------------------------------------------------------------------------------------------- */

static inline uint16_t scsi_get_be16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t scsi_get_be24(const uint8_t *p)
{
    return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static inline uint32_t scsi_get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t scsi_get_be64(const uint8_t *p)
{
    return (uint64_t)scsi_get_be32(p) << 32 | scsi_get_be32(p + 4);
}

static inline void scsi_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void scsi_put_be24(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 16);
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)v;
}

static inline void scsi_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void scsi_put_be64(uint8_t *p, uint64_t v)
{
    scsi_put_be32(p, (uint32_t)(v >> 32));
    scsi_put_be32(p + 4, (uint32_t)v);
}

/* ---------------------------------------------------------------------------------------------
 * Layout checks
 * --------------------------------------------------------------------------------------------- */

_Static_assert(sizeof(SENSE_DATA) == SENSE_BUFFER_SIZE, "SENSE_DATA is 18 bytes");
_Static_assert(sizeof(DESCRIPTOR_SENSE_DATA) == 8, "descriptor sense header is 8 bytes");
_Static_assert(sizeof(INQUIRYDATA) == INQUIRYDATABUFFERSIZE, "INQUIRYDATA is 36 bytes");
_Static_assert(offsetof(INQUIRYDATA, VendorId) == 8, "T10 VENDOR IDENTIFICATION at byte 8");
_Static_assert(sizeof(VPD_IDENTIFICATION_DESCRIPTOR) == 4, "designation descriptor header");
_Static_assert(sizeof(VPD_IDENTIFICATION_PAGE) == 4, "VPD page header is 4 bytes");
_Static_assert(sizeof(VPD_SUPPORTED_PAGES_PAGE) == 4, "VPD page header is 4 bytes");
_Static_assert(sizeof(VPD_SERIAL_NUMBER_PAGE) == 4, "VPD page header is 4 bytes");
_Static_assert(sizeof(VPD_BLOCK_LIMITS_PAGE) == 64, "block limits page is 64 bytes");
_Static_assert(sizeof(VPD_BLOCK_DEVICE_CHARACTERISTICS_PAGE) == 64, "B1h page is 64 bytes");
_Static_assert(sizeof(VPD_LOGICAL_BLOCK_PROVISIONING_PAGE) == 8, "B2h page header is 8 bytes");
_Static_assert(sizeof(READ_CAPACITY_DATA) == 8, "READ CAPACITY(10) data is 8 bytes");
_Static_assert(sizeof(READ_CAPACITY_DATA_EX) == 12, "READ_CAPACITY_DATA_EX is 12 bytes");
_Static_assert(sizeof(READ_CAPACITY16_DATA) == 32, "READ CAPACITY(16) data is 32 bytes");
_Static_assert(sizeof(LUN_LIST) == 8, "LUN list header is 8 bytes");
_Static_assert(sizeof(MODE_PARAMETER_HEADER) == 4, "mode parameter header(6) is 4 bytes");
_Static_assert(sizeof(MODE_PARAMETER_HEADER10) == 8, "mode parameter header(10) is 8 bytes");
_Static_assert(sizeof(MODE_PARAMETER_BLOCK) == 8, "block descriptor is 8 bytes");
_Static_assert(sizeof(MODE_CACHING_PAGE) == 12, "MODE_CACHING_PAGE is 12 bytes");
_Static_assert(sizeof(CDB) == 16, "CDB is 16 bytes");
_Static_assert(sizeof(((CDB *)0)->CDB6GENERIC) == 6, "6-byte CDB");
_Static_assert(sizeof(((CDB *)0)->CDB6READWRITE) == 6, "6-byte CDB");
_Static_assert(sizeof(((CDB *)0)->CDB6INQUIRY) == 6, "6-byte CDB");
_Static_assert(sizeof(((CDB *)0)->CDB6INQUIRY3) == 6, "6-byte CDB");
_Static_assert(sizeof(((CDB *)0)->CDB6VERIFY) == 6, "6-byte CDB");
_Static_assert(sizeof(((CDB *)0)->CDB6FORMAT) == 6, "6-byte CDB");
_Static_assert(sizeof(((CDB *)0)->CDB10) == 10, "10-byte CDB");
_Static_assert(sizeof(((CDB *)0)->CDB12) == 12, "12-byte CDB");
_Static_assert(sizeof(((CDB *)0)->CDB16) == 16, "16-byte CDB");
_Static_assert(sizeof(((CDB *)0)->MODE_SENSE) == 6, "MODE SENSE(6)");
_Static_assert(sizeof(((CDB *)0)->MODE_SENSE10) == 10, "MODE SENSE(10)");
_Static_assert(sizeof(((CDB *)0)->MODE_SELECT) == 6, "MODE SELECT(6)");
_Static_assert(sizeof(((CDB *)0)->MODE_SELECT10) == 10, "MODE SELECT(10)");
_Static_assert(sizeof(((CDB *)0)->START_STOP) == 6, "START STOP UNIT");
_Static_assert(sizeof(((CDB *)0)->MEDIA_REMOVAL) == 6, "PREVENT ALLOW MEDIUM REMOVAL");
_Static_assert(sizeof(((CDB *)0)->SYNCHRONIZE_CACHE10) == 10, "SYNCHRONIZE CACHE(10)");
_Static_assert(sizeof(((CDB *)0)->SYNCHRONIZE_CACHE16) == 16, "SYNCHRONIZE CACHE(16)");
_Static_assert(sizeof(((CDB *)0)->READ_CAPACITY16) == 16, "READ CAPACITY(16)");
_Static_assert(sizeof(((CDB *)0)->REPORT_LUNS) == 12, "REPORT LUNS");
_Static_assert(sizeof(((CDB *)0)->REQUEST_SENSE) == 6, "REQUEST SENSE");
_Static_assert(sizeof(((CDB *)0)->REPORT_SUPPORTED_OPERATION_CODES) == 12, "MAINTENANCE IN");

#endif
