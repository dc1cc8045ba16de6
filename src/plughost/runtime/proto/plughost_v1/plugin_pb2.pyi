from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DescribeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DescribeResponse(_message.Message):
    __slots__ = ("descriptor_json", "invoke_lane")
    DESCRIPTOR_JSON_FIELD_NUMBER: _ClassVar[int]
    INVOKE_LANE_FIELD_NUMBER: _ClassVar[int]
    descriptor_json: bytes
    invoke_lane: str
    def __init__(self, descriptor_json: _Optional[bytes] = ..., invoke_lane: _Optional[str] = ...) -> None: ...

class InvokeRequest(_message.Message):
    __slots__ = ("name", "request_json", "kind")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_JSON_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    name: str
    request_json: bytes
    kind: str
    def __init__(self, name: _Optional[str] = ..., request_json: _Optional[bytes] = ..., kind: _Optional[str] = ...) -> None: ...

class InvokeResponse(_message.Message):
    __slots__ = ("result_json", "error", "sends_json")
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SENDS_JSON_FIELD_NUMBER: _ClassVar[int]
    result_json: bytes
    error: Error
    sends_json: bytes
    def __init__(self, result_json: _Optional[bytes] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., sends_json: _Optional[bytes] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "message", "type", "retryable")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    type: str
    retryable: bool
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., type: _Optional[str] = ..., retryable: _Optional[bool] = ...) -> None: ...

class HealthRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HealthResponse(_message.Message):
    __slots__ = ("status", "detail", "info_json")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    INFO_JSON_FIELD_NUMBER: _ClassVar[int]
    status: str
    detail: str
    info_json: bytes
    def __init__(self, status: _Optional[str] = ..., detail: _Optional[str] = ..., info_json: _Optional[bytes] = ...) -> None: ...

class ReconfigureRequest(_message.Message):
    __slots__ = ("config_json",)
    CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    config_json: bytes
    def __init__(self, config_json: _Optional[bytes] = ...) -> None: ...

class ReconfigureResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetEnabledRequest(_message.Message):
    __slots__ = ("enabled",)
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    def __init__(self, enabled: _Optional[bool] = ...) -> None: ...

class SetEnabledResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
